#!/usr/bin/env python3
"""The lifecycle with the CMP issuer against OpenSSL's own CMP server (`openssl cmp -port`),
made to issue per request by tests/lifecycle/cmp_ca.py: an initial request (ir) with a shared
secret and with a bootstrap certificate whose key is on the device, key update requests (kur)
signed by the key in force with proof of possession by the new one (plain renewal and
rekey, EC and RSA), polling inside the call and through the pending state (also across an
agent restart), rejection, an expired certificate replaced through an ir, faults (CA down,
HTTP 500, garbage, a certificate for the wrong key) that keep the old certificate, a
SIGKILL mid-renewal, and mTLS through the provider with the renewed files."""

import os
import signal
import subprocess
import sys
import time
import unittest

_src = os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(_src, "tests", "integration"))
sys.path.insert(0, os.path.join(_src, "tests", "provider"))
sys.path.insert(0, os.path.join(_src, "tests", "lifecycle"))
sys.path.insert(0, os.path.join(_src, "tests", "acme"))

import harness  # noqa: E402
from harness import openssl, wait_until  # noqa: E402
import cmp_ca  # noqa: E402
from test_helper import LifecycleCase  # noqa: E402
from test_proxy import Tinyproxy  # noqa: E402  (tinyproxy fixture of tests/acme)


def der_of(cert_path):
    return openssl("x509", "-in", cert_path, "-outform", "DER").stdout_bytes


class CmpCase(LifecycleCase):
    auto_start = False

    def setUp(self):
        super().setUp()
        self.cmp = cmp_ca.CmpCa(self.tmp, self.ca, "/CN=web.example", ["dns:web.example"])
        self.issuer = {"kind": "cmp", "server": self.cmp.url, "trusted": self.ca.cert,
                       "reference": self.cmp.reference, "secret_file": self.cmp.secret_file,
                       "timeout": "10s", "total_timeout": "60s"}

    def tearDown(self):
        self.cmp.close()
        super().tearDown()

    def renew(self, *flags):
        return self.cli("renew", "web", "--now", *flags, json=True, check=False)

    def assert_failed_keeping(self, before, outcome):
        """The attempt failed with `outcome`; the generation in force is untouched."""
        view = self.view()
        self.assertEqual(view["last_attempt"]["outcome"], outcome, view["last_attempt"])
        self.assertEqual(view["generation"], before["generation"])
        self.assertEqual(view["serial"], before["serial"])
        with open(before["files"]["cert"]) as f:
            self.assertEqual(f.read(), self.cert_text)
        self.assert_consistent(view)
        return view


class TestRevocation(CmpCase):
    # RevDetails.crlEntryDetails: the CRLReason extension (2.5.29.21) holding ENUMERATED 1 (keyCompromise).
    CRL_REASON_KEY_COMPROMISE = bytes.fromhex("0603551d15 0403 0a0101".replace(" ", ""))

    def test_rr_signed_by_the_certificate_in_force_is_accepted(self):
        self.start_agent()
        first = self.enroll()
        done = self.cli("identities", "revoke", "web", "--reason", "keyCompromise", json=True).data
        self.assertEqual(done["result"]["action"], "revoked", done)
        self.assertEqual((done["status"], done["revocation"]["serial"]), ("revoked", first["serial"]))
        rr = self.cmp.requests("rr")
        self.assertEqual(len(rr), 1, self.cmp.names())
        self.assertIn(self.CRL_REASON_KEY_COMPROMISE, rr[0], "the rr does not carry the reason keyCompromise")
        self.assertIn(cmp_ca.OID_ECDSA_SHA256, rr[0])
        self.assertNotIn(cmp_ca.OID_PBM, rr[0], "an rr for a valid certificate is signed by it, not the secret")
        self.assertIn(der_of(first["files"]["cert"]), rr[0], "the rr is not signed with the certificate in force")
        # The next certificate is for a new key, through an ir or kur as usual.
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual((renewed["result"]["action"], renewed["status"]), ("issued", "valid"), renewed)
        self.assertNotEqual(renewed["key"], first["key"])
        self.assert_consistent(renewed)

    def test_rr_refused_by_the_server_changes_nothing(self):
        self.start_agent()
        first = self.enroll()
        # The mock server revokes only the certificate it answers with; make that another one.
        self.cmp._start_mock(self.cmp.ra_cert)
        done = self.cli("identities", "revoke", "web", check=False)
        self.assertEqual(done.rc, harness.EXIT_FAILURE, done.stderr)
        self.assertIn("not revoked", done.stderr)
        view = self.view()
        self.assertEqual((view["status"], view["serial"]), ("valid", first["serial"]))
        self.assertIsNone(view["revocation"])


class TlsFront:
    """nginx as a TLS reverse proxy before the CMP CA's front end (https://127.0.0.1:PORT/pkix/),
    with a server certificate from a CA of its own."""

    def __init__(self, tmp, tls_ca, upstream_port, client_ca=None):
        self.dir = tmp.mkdir("nginx-cmp", 0o755)
        self.port = harness.free_port()
        cert, key = tls_ca.server_cert("cmp-tls")
        conf = (f"daemon off;\nmaster_process on;\nuser root root;\nworker_processes 1;\n"
                f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log info;\n"
                "events { worker_connections 16; }\n"
                "http {\n  log_format cmp '$request client=$ssl_client_s_dn verify=$ssl_client_verify';\n"
                f"  access_log {self.dir}/access.log cmp;\n"
                + "".join(f"  {t}_temp_path {self.dir}/{t};\n"
                          for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + f"  server {{\n    listen 127.0.0.1:{self.port} ssl;\n"
                f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
                + (f"    ssl_verify_client optional;\n    ssl_client_certificate {client_ca};\n" if client_ca else "")
                + f"    location / {{ proxy_pass http://127.0.0.1:{upstream_port}; }}\n  }}\n}}\n")
        self.conf = tmp.write("nginx-cmp/nginx.conf", conf)
        self.proc = subprocess.Popen([harness.require_program("nginx"), "-c", self.conf, "-p", self.dir,
                                      "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                with open(os.path.join(self.dir, "error.log")) as f:
                    return "ready" if "start worker process" in f.read() else None
            except FileNotFoundError:
                return None
        state = wait_until(up, 30)
        if state != "ready":
            self.stop()
            raise RuntimeError(f"nginx did not start ({state}): {self.error_log()}")
        self.url = f"https://127.0.0.1:{self.port}/pkix/"

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-3000:]
        except FileNotFoundError:
            return "(no error.log)"

    def requests(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return [line for line in f.read().splitlines() if "POST /pkix/" in line]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


class TestHttps(CmpCase):
    """CMP over HTTPS: TLS to the CA (nginx before the mock server) verified with the issuer's
    own trust anchors (tls_trusted), separate from the CMP protection's `trusted`."""

    def setUp(self):
        super().setUp()
        self.tls_ca = harness.TestCA(self.tmp.join("tls-ca"), subject="/CN=keyward test TLS CA")
        self.front = TlsFront(self.tmp, self.tls_ca, self.cmp.port)
        self.issuer.update(server=self.front.url, tls_trusted=self.tls_ca.cert)

    def tearDown(self):
        self.front.stop()
        super().tearDown()

    def test_enroll_renew_and_revoke_through_tls(self):
        self.start_agent()
        first = self.enroll()
        self.assert_consistent(first)
        renewed = self.cli("renew", "web", "--now", "--rekey", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assert_consistent(renewed)
        revoked = self.cli("identities", "revoke", "web", json=True).data
        self.assertEqual(revoked["status"], "revoked")
        self.assertEqual(self.cmp.names().count("rr"), 1)
        # Every message went through the TLS front end (ir, certConf, kur, certConf, rr).
        self.assertGreaterEqual(len(self.front.requests()), 5, self.front.requests())

    def test_client_authentication_with_the_certificate_in_force(self):
        self.front.stop()
        self.front = TlsFront(self.tmp, self.tls_ca, self.cmp.port, client_ca=self.ca.cert)
        self.issuer.update(server=self.front.url, tls_client_auth=True)
        self.start_agent()
        first = self.enroll()  # nothing to authenticate with yet: the ir goes without
        self.assertTrue(all("client=- verify=NONE" in r for r in self.front.requests()), self.front.requests())
        seen = len(self.front.requests())
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        kur = self.front.requests()[seen:]
        self.assertTrue(kur, "no request went through the TLS front end")
        for line in kur:  # the device key answered the TLS handshake for the certificate in force
            self.assertIn("client=CN=web.example verify=SUCCESS", line)
        self.assertNotEqual(renewed["serial"], None)
        self.assertEqual(first["key"], renewed["key"])

    def test_a_server_certificate_from_another_ca_is_refused(self):
        self.issuer["tls_trusted"] = self.ca.cert  # the CMP CA, not the one of the TLS server
        self.start_agent()
        done = self.cli("enroll", "web", json=True, check=False)
        self.assertEqual(done.rc, harness.EXIT_FAILURE)
        view = self.view()
        self.assertEqual(view["status"], "not enrolled")
        self.assertEqual(view["last_attempt"]["outcome"], "unreachable")
        self.assertRegex(view["last_attempt"]["message"], r"certificate verify failed|tls|TLS|ssl|SSL")
        self.assertEqual(self.cmp.names(), [], "a message reached the CA over an unverified connection")


class TestEnrollAndKeyUpdate(CmpCase):
    def test_ir_with_a_shared_secret_then_kur_renewal_and_rekey(self):
        self.start_agent()
        first = self.enroll()
        self.assertEqual(first["issuer"], "cmp")
        self.assertEqual(self.cmp.names()[:2], ["ir", "certConf"])
        ir = self.cmp.requests("ir")[0]
        self.assertIn(cmp_ca.OID_PBM, ir, "the ir is not protected with the shared secret (PBM)")
        self.assertNotIn(self.cmp.secret.encode(), ir)
        self.assert_consistent(first)
        log = self.agent.log_text()
        self.assertNotIn(self.cmp.secret, log, "the shared secret reached the agent's log")

        # Renewal: a kur signed by the key and certificate in force (the server checks the
        # signature against its trusted CA), the same key.
        old_der = der_of(first["files"]["cert"])
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        kur = self.cmp.requests("kur")
        self.assertEqual(len(kur), 1, self.cmp.names())
        self.assertIn(cmp_ca.OID_ECDSA_SHA256, kur[0])
        self.assertNotIn(cmp_ca.OID_PBM, kur[0], "a kur must be signed by the current key, not the secret")
        self.assertIn(old_der, kur[0], "the kur does not carry the certificate in force")
        self.assertEqual(renewed["generation"], 2)
        self.assertEqual(renewed["key"], "web")
        self.assert_consistent(renewed)

        # Rekey: the new key proves possession, the old one still signs the message.
        renewed_der = der_of(renewed["files"]["cert"])
        rekeyed = self.cli("renew", "web", "--now", "--rekey", json=True).data
        self.assertEqual(rekeyed["result"]["action"], "issued", rekeyed)
        self.assertNotEqual(rekeyed["key"], "web")
        kur = self.cmp.requests("kur")
        self.assertEqual(len(kur), 2, self.cmp.names())
        self.assertIn(renewed_der, kur[1])
        new_pub = openssl("pkey", "-pubin", "-in", "/dev/stdin", "-outform", "DER",
                          input=self.agent.pubkey(rekeyed["key"])).stdout_bytes
        self.assertIn(new_pub[-65:], kur[1], "the kur's template does not name the new key")
        self.assert_consistent(rekeyed)
        self.assertEqual(self.cmp.names().count("ir"), 1)

        # The renewed files work for mutual TLS through the provider.
        import provider_helpers as ph
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket)
        with ph.www_server(self.ca) as server:
            before = self.agent.signatures()
            result = ph.s_client(server.port, self.ca.cert, rekeyed["files"]["cert"], rekeyed["files"]["keyref"],
                                 env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, "web.example")

    def test_rsa_keys_enroll_and_renew(self):
        self.options["key_type"] = "rsa-2048"
        self.start_agent()
        first = self.enroll()
        self.assert_consistent(first)
        renewed = self.cli("renew", "web", "--now", "--rekey", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertIn("kur", self.cmp.names())
        self.assertIn(bytes.fromhex("06092a864886f70d01010b"), self.cmp.requests("kur")[0])  # sha256WithRSA
        self.assert_consistent(renewed)

    def test_ir_with_a_bootstrap_certificate_on_the_device(self):
        del self.issuer["reference"], self.issuer["secret_file"]
        boot_cert = self.tmp.join("bootstrap.crt")
        self.issuer.update({"bootstrap_cert": boot_cert, "bootstrap_key": "bootstrap"})
        self.start_agent()
        self.agent.create_key("bootstrap")
        self.agent.issue_client_cert(self.ca, "bootstrap", boot_cert, "/CN=bootstrap.example")
        first = self.enroll()
        ir = self.cmp.requests("ir")
        self.assertEqual(len(ir), 1)
        self.assertNotIn(cmp_ca.OID_PBM, ir[0])
        self.assertIn(cmp_ca.OID_ECDSA_SHA256, ir[0])
        self.assertIn(der_of(boot_cert), ir[0], "the ir does not carry the bootstrap certificate")
        self.assertNotEqual(first["key"], "bootstrap")
        self.assert_consistent(first)

    def test_a_wrong_bootstrap_key_is_a_configuration_error(self):
        del self.issuer["reference"], self.issuer["secret_file"]
        boot_cert = self.tmp.join("bootstrap.crt")
        self.issuer.update({"bootstrap_cert": boot_cert, "bootstrap_key": "bootstrap"})
        self.start_agent()
        self.agent.create_key("bootstrap")
        self.agent.create_key("other")
        self.agent.issue_client_cert(self.ca, "other", boot_cert, "/CN=bootstrap.example")
        done = self.cli("enroll", "web", json=True, check=False)
        self.assertNotEqual(done.rc, 0)
        view = self.view()
        self.assertEqual(view["last_attempt"]["outcome"], "misconfigured", view["last_attempt"])
        self.assertIn("bootstrap", view["last_attempt"]["message"])
        self.assertEqual(self.cmp.names(), [], "nothing should have been sent")


class TestPolling(CmpCase):
    def test_a_short_wait_is_polled_inside_the_call(self):
        self.cmp.mock_args = ["-poll_count", "2", "-check_after", "1"]
        self.start_agent()
        first = self.enroll()
        self.assertEqual(self.cmp.names().count("pollReq"), 2, self.cmp.names())
        self.assertEqual(self.cmp.names().count("ir"), 1)
        self.assert_consistent(first)

    def test_a_long_wait_goes_through_the_pending_state(self):
        self.cmp.mock_args = ["-poll_count", "2", "-check_after", "1"]
        self.issuer["poll_inline_max"] = "0s"
        self.start_agent()
        done = self.cli("enroll", "web", json=True).data
        self.assertEqual(done["result"]["action"], "pending", done)
        self.assertEqual(done["status"], "enrolling")
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 40, 0.3),
                        "the agent did not poll to completion\n" + str(self.cmp.names()) + self.agent.log_tail())
        self.assertEqual(self.cmp.names().count("ir"), 1, self.cmp.names())
        self.assertEqual(self.cmp.names().count("pollReq"), 2, self.cmp.names())
        view = self.view()
        self.assertIsNone(view["pending"])
        self.assert_consistent(view)

    def test_a_restart_while_waiting_requests_again(self):
        self.cmp.mock_args = ["-poll_count", "2", "-check_after", "3"]
        self.issuer["poll_inline_max"] = "0s"
        self.start_agent()
        done = self.cli("enroll", "web", json=True).data
        self.assertEqual(done["result"]["action"], "pending", done)
        self.agent.restart()  # the CMP transaction (nonces, transaction ID) lived in the old process
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 60, 0.3),
                        str(self.cmp.names()) + self.agent.log_tail())
        self.assertEqual(self.cmp.names().count("ir"), 2, self.cmp.names())
        self.assertIn("requesting again", self.agent.log_text())
        self.assert_consistent(self.view())


    def test_sigterm_while_polling_stops_at_once(self):
        self.cmp.mock_args = ["-poll_count", "20", "-check_after", "3"]
        self.issuer["poll_inline_max"] = "10s"
        self.start_agent()
        env = dict(os.environ, KEYWARD_SOCKET=self.agent.socket)
        cli = subprocess.Popen([harness.cli_path(), "enroll", "web"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.assertTrue(wait_until(lambda: "pollReq" in self.cmp.names(), 30), self.agent.log_tail())
        self.agent.stop(timeout=10)  # polling would go on for a minute
        _, err = cli.communicate(timeout=30)
        self.assertEqual(cli.returncode, harness.EXIT_UNREACHABLE, err)
        self.assertIn("attempt interrupted", self.agent.log_text())


class TestProxy(CmpCase):
    def test_through_an_http_proxy_named_in_the_table(self):
        proxy = Tinyproxy(self.tmp)
        try:
            self.issuer["proxy"] = proxy.url
            # The environment's no_proxy naming the server does not exempt it from a table proxy.
            self.agent = harness.Agent(self.tmp, config=self.write_config(),
                                       env={"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"})
            self.agent.start()
            first = self.enroll()
            self.assertEqual(self.cmp.names()[:2], ["ir", "certConf"])
            posts = proxy.requests(f"POST http://127.0.0.1:{self.cmp.port}/pkix/")
            self.assertGreaterEqual(posts, 2, "the CMP messages did not go through the proxy:\n" + proxy.log_text()[-3000:])
            with open(first["files"]["cert"]) as f:
                self.cert_text = f.read()
            proxy.stop()
            done = self.renew()
            self.assertNotEqual(done.rc, 0, done.stdout)
            self.assert_failed_keeping(first, "unreachable")
        finally:
            proxy.stop()


class TestFailures(CmpCase):
    def enrolled(self):
        self.start_agent()
        first = self.enroll()
        with open(first["files"]["cert"]) as f:
            self.cert_text = f.read()
        return first

    def test_rejection_is_reported_and_held(self):
        self.cmp.mode = "reject"
        self.start_agent()
        done = self.cli("enroll", "web", json=True, check=False)
        self.assertNotEqual(done.rc, 0)
        view = self.view()
        self.assertEqual(view["last_attempt"]["outcome"], "rejected", view["last_attempt"])
        self.assertIn("rejected", view["last_attempt"]["message"])
        sent = len(self.cmp.names())
        time.sleep(3)  # retry_min is 1 s: a retry loop would show here
        self.assertEqual(len(self.cmp.names()), sent, "a rejection was retried")
        self.assertFalse(view["generation"])

    def test_faults_keep_the_old_certificate_and_back_off(self):
        first = self.enrolled()
        for mode in ("http500", "garbage", "wrong_key"):
            with self.subTest(mode=mode):
                self.cmp.mode = mode
                done = self.renew()
                self.assertNotEqual(done.rc, 0, done.stdout)
                view = self.assert_failed_keeping(first, "unreachable")
                if mode == "wrong_key":
                    self.assertIn("refused", view["last_attempt"]["message"])
                    self.assertIn("certConf", self.cmp.names()[-1:], "the CA was not told of the refusal")
        self.cmp.stop()  # connection refused
        done = self.renew()
        self.assertNotEqual(done.rc, 0)
        view = self.assert_failed_keeping(first, "unreachable")
        self.assertEqual(view["failures"], 4)
        self.assertIsNotNone(view["next_renewal"])
        # The CA is back: the next attempt (forced here) renews, the backoff is cleared.
        self.cmp.mode = "issue"
        self.cmp.start()
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertEqual(renewed["generation"], 2)
        self.assertEqual(self.view()["failures"], 0)
        self.assert_consistent(renewed)

    def test_an_expired_certificate_is_replaced_through_an_initial_request(self):
        first = self.enrolled()
        self.put_expired_certificate_in_force(first)
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 2, 30, 0.3),
                        "the expired certificate was not renewed at once\n" + self.agent.log_tail())
        self.assertEqual(self.cmp.names().count("ir"), 2, self.cmp.names())
        self.assertNotIn("kur", self.cmp.names())
        self.assertIn(cmp_ca.OID_PBM, self.cmp.requests("ir")[-1])
        self.assertIn("expired", self.agent.log_text())
        view = self.view()
        self.assertEqual(view["status"], "valid")
        self.assert_consistent(view)

    def test_sigkill_during_a_kur_keeps_the_old_generation_and_renewal_continues(self):
        first = self.enrolled()
        self.cmp.mode = "hold"
        env = dict(os.environ, KEYWARD_SOCKET=self.agent.socket)
        cli = subprocess.Popen([harness.cli_path(), "renew", "web", "--now", "--rekey"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(self.cmp.held.wait(60), "the kur never reached the CA\n" + self.agent.log_tail())
            self.agent.signal(signal.SIGKILL)
            self.agent.wait()
        finally:
            cli.wait(60)
        self.cmp.mode = "issue"
        self.cmp.release()
        self.agent.start()
        view = self.view()
        self.assertEqual(view["generation"], 1)
        self.assertEqual(view["key"], first["key"])
        self.assert_consistent(view)
        renewed = self.cli("renew", "web", "--now", "--rekey", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertEqual(renewed["generation"], 2)
        self.assert_consistent(renewed)


if __name__ == "__main__":
    harness.main()
