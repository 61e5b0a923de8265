#!/usr/bin/env python3
"""The certificate lifecycle end to end: a real keywardd on its embedded SoftHSM2 token, a
certmonger-style CA helper (tests/lifecycle/ca_helper.sh, a software CA made with openssl)
exercising every exit code, the keyward CLI, and TLS through the provider with the
identity's files. Also Debian certmonger's own local-submit helper, offline."""

import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

_src = os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(_src, "tests", "integration"))
sys.path.insert(0, os.path.join(_src, "tests", "provider"))

import harness  # noqa: E402
from harness import Agent, TempDir, TestCA, openssl, run, wait_until  # noqa: E402

HELPER = os.path.join(_src, "tests", "lifecycle", "ca_helper.sh")
LOCAL_SUBMIT = "/usr/lib/certmonger/local-submit"


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def identity_toml(name, options, issuer):
    lines = [f"[identities.{name}]"] + [f"{k} = {toml_value(v)}" for k, v in options.items()]
    lines += [f"[identities.{name}.issuer]"] + [f"{k} = {toml_value(v)}" for k, v in issuer.items()]
    return "\n".join(lines) + "\n"


class LifecycleCase(unittest.TestCase):
    """One agent per test with identity `web` served by ca_helper.sh. Subclasses or tests
    adjust `options` (identity keys) before start_agent()."""

    auto_start = True

    def setUp(self):
        self.tmp = TempDir("keyward-lifecycle-")
        self.ca = TestCA(self.tmp.join("ca"))
        self.hdir = self.tmp.mkdir("helper")
        other = TestCA(self.tmp.join("other-ca"), subject="/CN=other CA")
        os.symlink(other.cert, os.path.join(self.hdir, "other-ca.crt"))
        os.symlink(other.key, os.path.join(self.hdir, "other-ca.key"))
        self.set_mode("issue")
        self.options = {
            "subject": "/CN=web.example",
            "sans": ["dns:web.example"],
            "trust_anchors": self.ca.cert,
            "auto_enroll": False,
            "retry_min": "1s",
            "retry_max": "1h",
        }
        self.issuer = {"kind": "helper", "command": [HELPER],
                       "environment": {"HELPER_DIR": self.hdir, "CA_CERT": self.ca.cert, "CA_KEY": self.ca.key}}
        self.agent = None
        if self.auto_start:
            self.start_agent()

    def tearDown(self):
        self.unblock_helper()
        if self.agent:
            self.agent.kill()
            self.agent.forget()
        self.tmp.cleanup()

    # -- the agent and its configuration --

    def write_config(self):
        return self.tmp.write("keyward.toml", identity_toml("web", self.options, self.issuer))

    def start_agent(self):
        self.agent = Agent(self.tmp, config=self.write_config())
        self.agent.start()
        return self.agent

    def cli(self, *args, **kw):
        kw.setdefault("timeout", 300)
        return self.agent.cli(*args, **kw)

    def view(self):
        return self.cli("identities", "show", "web", json=True).data

    def enroll(self):
        done = self.cli("enroll", "web", json=True)
        self.assertEqual(done.data["result"]["action"], "issued", done.stdout)
        return done.data

    # -- the helper --

    def set_mode(self, mode):
        with open(os.path.join(self.hdir, "mode"), "w") as f:
            f.write(mode + "\n")

    def helper_calls(self, op=None):
        try:
            with open(os.path.join(self.hdir, "helper.log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if op is None or line.startswith(f"op={op} ")]

    def helper_env(self):
        env = {}
        with open(os.path.join(self.hdir, "helper.env")) as f:
            key = None
            for line in f.read().splitlines():
                if "=" in line and line.split("=", 1)[0].replace("_", "").isalnum() and line.split("=", 1)[0].isupper():
                    key, value = line.split("=", 1)
                    env[key] = value
                elif key:
                    env[key] += "\n" + line
        return env

    def unblock_helper(self):
        pid_file = os.path.join(self.hdir, "blocked.pid")
        if os.path.exists(pid_file):
            try:
                with open(pid_file) as f:
                    os.killpg(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            os.unlink(pid_file)

    def put_expired_certificate_in_force(self, view):
        """With the agent stopped meanwhile: the certificate in force becomes one for the same
        key from the same CA that expired long ago (openssl ca can set the dates)."""
        cadir = self.tmp.mkdir("openssl-ca")
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        cnf = self.tmp.write("openssl-ca.cnf", f"[ca]\ndefault_ca = d\n[d]\ndatabase = {cadir}/index.txt\n"
                                               f"new_certs_dir = {cadir}\nserial = {cadir}/serial\ndefault_md = sha256\n"
                                               "policy = p\ncopy_extensions = copy\nunique_subject = no\n"
                                               "[p]\ncommonName = supplied\n")
        csr = self.agent.csr(view["key"], self.tmp.join("expired.csr"), "/CN=web.example", ["dns:web.example"])
        expired = self.tmp.join("expired.pem")
        openssl("ca", "-batch", "-config", cnf, "-in", csr, "-out", expired, "-cert", self.ca.cert, "-keyfile",
                self.ca.key, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-notext")
        self.agent.stop()
        gen = os.path.realpath(os.path.join(view["dir"], "current"))
        with open(expired) as src, open(os.path.join(gen, "cert.pem"), "w") as dst:
            dst.write(src.read())
        self.agent.start()

    # -- checks --

    def assert_consistent(self, view):
        """The files in force form one generation: the certificate is for the key the key
        reference names, chains to the CA, and the view agrees."""
        files = view["files"]
        cert, keyref = files["cert"], files["keyref"]
        openssl("verify", "-CAfile", self.ca.cert, cert)
        cert_pub = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
        with open(keyref) as f:
            ref = f.read()
        self.assertIn("-----BEGIN KEYWARD KEY-----", ref)
        self.assertEqual(cert_pub.strip(), self.agent.pubkey(view["key"]).strip(),
                         "the certificate in force is not for the key in force")
        serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip().split("=", 1)[1]
        self.assertEqual(serial.lstrip("0"), view["serial"].lstrip("0"))
        gen_dir = os.path.realpath(os.path.join(view["dir"], "current"))
        self.assertEqual(os.path.basename(gen_dir), f"gen-{view['generation']}")
        with open(os.path.join(gen_dir, "meta.json")) as f:
            self.assertEqual(json.load(f)["key"], view["key"])


class TestEnrollAndRenew(LifecycleCase):
    def test_enroll_writes_files_and_the_view(self):
        self.assertEqual(self.view()["status"], "not enrolled")
        listing = self.cli("identities", "list").stdout
        self.assertRegex(listing, r"!\s+web\s+not enrolled")
        data = self.enroll()
        self.assertEqual(data["status"], "valid")
        self.assertEqual(data["generation"], 1)
        self.assertEqual(data["key"], "web")
        self.assertEqual(data["subject"], "/CN=web.example")
        self.assertEqual(data["sans"], ["dns:web.example"])
        self.assertEqual(data["issuer"], "helper")
        self.assertEqual(data["certificate_issuer"], "/CN=keyward test CA")
        self.assertEqual(data["last_attempt"]["outcome"], "issued")
        self.assertIsNone(data["previous"])
        for field in ("not_before", "not_after", "serial", "next_renewal"):
            self.assertTrue(data[field], field)
        for path in data["files"].values():
            self.assertTrue(os.path.isfile(path), path)
            self.assertTrue(path.startswith(os.path.join(data["dir"], "current") + os.sep), path)
        self.assert_consistent(data)
        # The CSR was signed on the device by the agent itself, and that use of the key is
        # counted like a client's (keyward status, the metrics).
        use = {u["key"]: u for u in self.cli("status", json=True).data["key_use"]}
        self.assertGreaterEqual(use.get("web", {}).get("signatures", 0), 1, use)
        eku = openssl("x509", "-in", data["files"]["cert"], "-noout", "-ext", "extendedKeyUsage").stdout
        self.assertIn("TLS Web Client Authentication", eku)
        # The helper got the certmonger variables, and nothing secret.
        calls = self.helper_calls("SUBMIT")
        self.assertEqual(len(calls), 1, calls)
        self.assertIn("renew=no", calls[0])
        self.assertIn("subject=CN=web.example", calls[0])
        self.assertIn("hostname=web.example", calls[0])
        env = self.helper_env()
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", env["CERTMONGER_CSR"])
        self.assertNotIn("CERTMONGER_CERTIFICATE", env)
        pin = self.agent.user_pin()
        for k, v in env.items():
            self.assertNotIn(pin, v, f"the PIN leaked into the helper's environment ({k})")
            self.assertNotIn("SOFTHSM2_CONF", k)
        # The text views name the files.
        text = self.cli("identities", "show", "web").stdout
        self.assertIn(data["files"]["cert"], text)
        self.assertIn(data["files"]["keyref"], text)
        listing = self.cli("identities", "list", json=True).data
        self.assertEqual([i["name"] for i in listing["identities"]], ["web"])
        # Enrolling again says so and changes nothing.
        again = self.cli("enroll", "web", json=True).data
        self.assertEqual(again["result"]["action"], "not_due")
        self.assertEqual(again["generation"], 1)

    def test_cli_errors(self):
        for args in (("identities", "show", "nope"), ("renew", "nope"), ("enroll", "nope"),
                     ("identities", "rollback", "nope")):
            with self.subTest(args=args):
                done = self.cli(*args, check=False)
                self.assertEqual(done.rc, harness.EXIT_FAILURE, done.stderr)
                self.assertIn('no identity named "nope"', done.stderr)
        done = self.cli("identities", "rollback", "web", check=False)
        self.assertEqual(done.rc, harness.EXIT_FAILURE)
        self.assertIn("no previous generation", done.stderr)
        self.assertEqual(self.cli("renew", check=False).rc, harness.EXIT_USAGE)
        self.assertEqual(self.cli("identities", "frobnicate", check=False).rc, harness.EXIT_USAGE)

    def test_renew_keeps_the_key_rekey_makes_a_new_one(self):
        first = self.enroll()
        not_due = self.cli("renew", "web", json=True).data
        self.assertEqual(not_due["result"]["action"], "not_due")
        self.assertEqual(len(self.helper_calls("SUBMIT")), 1)

        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertEqual(renewed["generation"], 2)
        self.assertEqual(renewed["key"], "web")
        self.assertNotEqual(renewed["serial"], first["serial"])
        self.assertEqual(renewed["previous"], {"generation": 1, "key": "web"})
        self.assertIn("renew=yes", self.helper_calls("SUBMIT")[-1])
        self.assertIn("-----BEGIN CERTIFICATE-----", self.helper_env()["CERTMONGER_CERTIFICATE"])
        self.assert_consistent(renewed)
        self.assertEqual(renewed["keys_to_destroy"], [])

        old_pub = self.agent.pubkey("web")
        rekeyed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual(rekeyed["result"]["action"], "issued", rekeyed)
        self.assertEqual(rekeyed["generation"], 3)
        self.assertEqual(rekeyed["key"], "web.3")
        self.assertNotEqual(self.agent.pubkey("web.3"), old_pub)
        self.assertEqual(rekeyed["previous"], {"generation": 2, "key": "web"})
        self.assertEqual([d["key"] for d in rekeyed["keys_to_destroy"]], ["web"])
        self.assert_consistent(rekeyed)
        # Only current and previous generations stay on disk.
        gens = sorted(n for n in os.listdir(rekeyed["dir"]) if n.startswith("gen-"))
        self.assertEqual(gens, ["gen-2", "gen-3"])

    def test_rollback_puts_the_previous_generation_back(self):
        self.enroll()
        rekeyed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual(rekeyed["key"], "web.2")
        back = self.cli("identities", "rollback", "web", json=True).data
        self.assertEqual(back["generation"], 1)
        self.assertEqual(back["key"], "web")
        self.assertEqual(back["previous"], {"generation": 2, "key": "web.2"})
        self.assertEqual(back["last_attempt"]["outcome"], "rollback")
        self.assertEqual([d["key"] for d in back["keys_to_destroy"]], ["web.2"])
        self.assert_consistent(back)
        # Automatic renewal does not undo it at once.
        self.assertGreater(back["next_renewal_unix"], time.time() + 1800)
        # And back again.
        forth = self.cli("identities", "rollback", "web", json=True).data
        self.assertEqual(forth["generation"], 2)
        self.assert_consistent(forth)


class TestGracePeriod(LifecycleCase):
    auto_start = False

    def test_old_key_destroyed_after_the_grace_period_only(self):
        self.options["grace_period"] = "3s"
        self.start_agent()
        self.enroll()
        self.cli("renew", "web", "--rekey")
        self.assertIn("web", self.cli("keys", "list", json=True).stdout)
        listed = lambda: [k["name"] for k in self.cli("keys", "list", json=True).data["keys"]]  # noqa: E731
        self.assertIn("web", listed(), "the old key went before its grace period")
        self.assertTrue(wait_until(lambda: "web" not in listed(), 20, 0.5),
                        "the old key was not destroyed after its grace period\n" + self.agent.log_tail())
        self.assertIn("web.2", listed())
        done = self.cli("identities", "rollback", "web", check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("no longer exists", done.stderr)


class TestRevocation(LifecycleCase):
    """keyward identities revoke through the helper (CERTMONGER_OPERATION=REVOKE)."""

    def revoked_log(self):
        path = os.path.join(self.hdir, "revoked.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def test_revoke_calls_the_helper_with_the_certificate_and_the_reason(self):
        data = self.enroll()
        done = self.cli("identities", "revoke", "web", "--reason", "superseded")
        self.assertIn("certificate revoked (superseded)", done.stdout)
        self.assertRegex(done.stdout, r"revoked:\s+\S+")
        self.assertEqual(self.revoked_log(), [f"serial={data['serial']} reason=superseded code=4"])
        env = self.helper_env()
        self.assertEqual(env["CERTMONGER_OPERATION"], "REVOKE")
        self.assertEqual(env["KEYWARD_IDENTITY"], "web")
        self.assertEqual(env["KEYWARD_KEY"], "web")
        with open(data["files"]["cert"]) as f:
            self.assertEqual(env["CERTMONGER_CERTIFICATE"].strip(), f.read().strip())
        view = self.view()
        self.assertEqual(view["status"], "revoked")
        self.assertEqual(view["revocation"]["source"], "requested")
        self.assertEqual(view["last_attempt"]["outcome"], "revoked")
        self.assertTrue(view["held"])
        audit = self.agent.log_text()
        self.assertRegex(audit, r"op=revoke .*web.*result=ok")
        # superseded: the key stays for the next certificate.
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual((renewed["result"]["action"], renewed["key"], renewed["status"]), ("issued", "web", "valid"))

    def test_a_helper_that_cannot_revoke_or_refuses_changes_nothing(self):
        data = self.enroll()
        for mode, rc, text in (("norevoke", harness.EXIT_FAILURE, "this issuer cannot revoke"),
                               ("reject", harness.EXIT_FAILURE, "refused to revoke"),
                               ("unreachable", harness.EXIT_FAILURE, "unreachable")):
            self.set_mode(mode)
            done = self.cli("identities", "revoke", "web", "--retire", "--yes", check=False)
            self.assertEqual(done.rc, rc, (mode, done.stderr))
            self.assertIn(text, done.stderr)
            view = self.view()
            self.assertEqual((view["status"], view["serial"]), ("valid", data["serial"]), mode)
            self.assert_consistent(view)
        self.assertEqual(self.revoked_log(), [])

    def test_certmonger_local_submit_cannot_revoke(self):
        self.assertTrue(os.access(LOCAL_SUBMIT, os.X_OK), f"{LOCAL_SUBMIT} is missing (Debian package certmonger)")
        self.enroll()
        self.agent.stop()
        self.issuer = {"kind": "helper", "command": [LOCAL_SUBMIT]}
        self.start_agent()
        done = self.cli("identities", "revoke", "web", check=False)
        self.assertEqual(done.rc, harness.EXIT_FAILURE, done.stderr)
        self.assertIn("this issuer cannot revoke", done.stderr)

    def test_revoke_without_a_certificate_and_unknown_names(self):
        done = self.cli("identities", "revoke", "web", check=False)
        self.assertEqual(done.rc, harness.EXIT_FAILURE)
        self.assertIn("has no certificate to revoke", done.stderr)
        done = self.cli("identities", "revoke", "nosuch", check=False)
        self.assertIn("no identity named", done.stderr)

    def test_retire_revokes_removes_the_generations_and_destroys_the_keys(self):
        self.enroll()
        rekeyed = self.cli("renew", "web", "--rekey", json=True).data  # two keys: web (grace period), web.2
        self.assertEqual(rekeyed["key"], "web.2")
        retired = self.cli("identities", "revoke", "web", "--retire", "--yes", json=True).data
        self.assertEqual(retired["status"], "retired")
        self.assertEqual(self.revoked_log(), [f"serial={rekeyed['serial']} reason=unspecified code=0"])
        self.assertFalse(os.path.exists(os.path.join(retired["dir"], "current")))
        self.assertFalse(os.path.exists(os.path.join(retired["dir"], "previous")))
        self.assertEqual(sorted(n for n in os.listdir(retired["dir"]) if n.startswith("gen-")), [])
        self.assertEqual(self.cli("keys", "list", json=True).data["keys"], [])
        listing = self.agent.pkcs11_tool("--list-objects").stdout
        self.assertNotIn("label:      web", listing)
        self.assertIn("destroyed (web.2, web)", retired["last_attempt"]["message"])
        # Nothing happens by itself after a restart; an enroll starts afresh.
        self.agent.restart()
        self.assertEqual(self.view()["status"], "retired")
        fresh = self.enroll()
        self.assertEqual((fresh["generation"], fresh["key"], fresh["status"]), (1, "web", "valid"))
        self.assert_consistent(fresh)

    def test_rekey_for_a_compromised_key_revokes_the_replaced_certificate(self):
        first = self.enroll()
        done = self.cli("renew", "web", "--compromised", json=True).data
        self.assertEqual((done["result"]["action"], done["key"]), ("issued", "web.2"), done)
        self.assertEqual(self.revoked_log(), [f"serial={first['serial']} reason=keyCompromise code=1"])
        self.assertEqual(done["keys_to_destroy"], [])
        self.assertEqual([k["name"] for k in self.cli("keys", "list", json=True).data["keys"]], ["web.2"])
        self.assertEqual(done["status"], "valid")
        self.assert_consistent(done)


class TestRevocationChecking(LifecycleCase):
    """The certificate in force checked by OCSP: `openssl ocsp` as the responder over an
    `openssl ca`-style index the test writes, signed by the CA itself."""

    auto_start = False

    def setUp(self):
        super().setUp()
        self.ocsp_port = harness.free_port()
        self.index = self.tmp.write("ocsp-index.txt", "")
        self.ocsp = None
        self.issuer["environment"]["OCSP_URL"] = f"http://127.0.0.1:{self.ocsp_port}"
        self.options["revocation_check_interval"] = "2s"

    def tearDown(self):
        self.stop_responder()
        super().tearDown()

    def start_responder(self):
        log_path = self.tmp.join("ocsp.log")
        with open(log_path, "a") as log:
            start = log.tell()
            self.ocsp = subprocess.Popen(
                ["openssl", "ocsp", "-index", self.index, "-CA", self.ca.cert, "-rsigner", self.ca.cert,
                 "-rkey", self.ca.key, "-port", str(self.ocsp_port), "-nmin", "5"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def accepting():  # a probe connection would stall the single-threaded responder
            with open(log_path) as f:
                f.seek(start)
                return "ACCEPT" in f.read()
        self.assertTrue(wait_until(accepting, 10), "openssl ocsp did not start")

    def stop_responder(self):
        if self.ocsp:
            harness.end_process(self.ocsp)
            self.ocsp = None

    def set_index(self, view, revoked_reason=None):
        """The CA's index says the certificate in force is valid, or revoked with that reason;
        the responder is restarted to read it."""
        self.set_index_file(view, revoked_reason)
        self.stop_responder()
        self.start_responder()

    def set_index_file(self, view, revoked_reason=None):
        expiry = time.strftime("%y%m%d%H%M%SZ", time.gmtime(view["not_after_unix"]))
        if revoked_reason:
            now = time.strftime("%y%m%d%H%M%SZ", time.gmtime())
            line = f"R\t{expiry}\t{now},{revoked_reason}\t{view['serial']}\tunknown\t/CN=web.example\n"
        else:
            line = f"V\t{expiry}\t\t{view['serial']}\tunknown\t/CN=web.example\n"
        with open(self.index, "w") as f:
            f.write(line)

    def check_result(self):
        check = self.view()["revocation_check"]
        return check["result"] if check else None

    def test_good_then_responder_down_then_revoked_and_enrolled_again_with_a_new_key(self):
        self.start_agent()
        first = self.enroll()
        self.set_index(first)
        self.assertTrue(wait_until(lambda: self.check_result() == "good", 20, 0.5),
                        str(self.view()["revocation_check"]) + "\n" + self.agent.log_tail())
        self.assertIn(f"127.0.0.1:{self.ocsp_port}", self.view()["revocation_check"]["message"])

        # Responder down: a soft-fail shown in the view, never a revocation.
        self.stop_responder()
        self.assertTrue(wait_until(lambda: self.check_result() == "unavailable", 20, 0.5), self.agent.log_tail())
        view = self.view()
        self.assertEqual((view["status"], view["generation"]), ("valid", 1))
        self.assertIn("unreachable", view["revocation_check"]["message"])
        shown = self.cli("identities", "show", "web").stdout
        self.assertRegex(shown, r"revocation:\s+unavailable")

        # The CA revokes it: found at the next check, a new certificate for a new key at once.
        self.set_index(first, "keyCompromise")
        renewed = wait_until(lambda: (lambda v: v if v["generation"] == 2 else None)(self.view()), 40, 0.5)
        self.assertTrue(renewed, "no re-enrollment after the revocation\n" + self.agent.log_tail())
        self.assertEqual(renewed["status"], "valid")
        self.assertEqual(renewed["key"], "web.2")
        self.assertEqual(renewed["keys_to_destroy"], [], "the key of a certificate revoked for keyCompromise stays")
        self.assert_consistent(renewed)
        log = self.agent.log_text()
        self.assertIn(f"certificate {first['serial']} has been revoked (keyCompromise", log)
        self.assertRegex(log, rf"audit: op=revoked identity=web serial={first['serial']} reason=keyCompromise")
        self.assertEqual([k["name"] for k in self.cli("keys", "list", json=True).data["keys"]], ["web.2"])

    def test_crl_over_http_when_there_is_no_responder(self):
        del self.issuer["environment"]["OCSP_URL"]
        crl_dir = self.tmp.mkdir("crl", 0o755)
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=crl_dir)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.issuer["environment"]["CRL_URL"] = f"http://127.0.0.1:{server.server_address[1]}/ca.crl"
        cnf = self.tmp.write("crl-ca.cnf", f"[ca]\ndefault_ca = d\n[d]\ndatabase = {self.index}\n"
                                           f"new_certs_dir = {crl_dir}\nserial = {crl_dir}/serial\n"
                                           "default_md = sha256\ndefault_crl_days = 1\npolicy = p\n"
                                           "[p]\ncommonName = supplied\n")

        def publish(view, reason=None):
            self.set_index_file(view, reason)
            openssl("ca", "-gencrl", "-config", cnf, "-keyfile", self.ca.key, "-cert", self.ca.cert,
                    "-out", os.path.join(crl_dir, "ca.crl"))

        self.start_agent()
        first = self.enroll()
        publish(first)
        self.assertTrue(wait_until(lambda: self.check_result() == "good", 20, 0.5), self.agent.log_tail())
        self.assertIn("not on CRL http://127.0.0.1:", self.view()["revocation_check"]["message"])
        publish(first, "keyCompromise")
        renewed = wait_until(lambda: (lambda v: v if v["generation"] == 2 else None)(self.view()), 40, 0.5)
        self.assertTrue(renewed, "no re-enrollment after the revocation\n" + self.agent.log_tail())
        self.assertEqual((renewed["status"], renewed["key"]), ("valid", "web.2"))
        self.assert_consistent(renewed)
        self.assertRegex(self.agent.log_text(),
                         rf"audit: op=revoked identity=web serial={first['serial']} reason=keyCompromise source=crl")


class TestOrphanKeys(LifecycleCase):
    """Key objects on the token the agent does not list (a public half a crash inside
    C_GenerateKeyPair leaves behind), made here with OpenSC's pkcs11-tool."""

    auto_start = False

    def put_public_half(self, label, key_id):
        key = self.tmp.join(f"orphan-{key_id}.pem")
        der = self.tmp.join(f"orphan-{key_id}.der")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("pkey", "-in", key, "-pubout", "-outform", "DER", "-out", der)
        self.agent.pkcs11_tool("--write-object", der, "--type", "pubkey", "--label", label, "--id", key_id)

    def objects(self, kind, label):
        listing = self.agent.pkcs11_tool("--list-objects", "--type", kind).stdout
        return [line for line in listing.splitlines() if line.strip() == f"label:      {label}"]

    def test_public_halves_left_behind_do_not_block_rekeys(self):
        self.start_agent()
        self.enroll()
        # One more leftover than the other names a rekey tries: before, every rekey failed
        # with "a key named web.2-6 already exists".
        for i, label in enumerate(["web.2"] + [f"web.2-{k}" for k in range(2, 7)]):
            self.put_public_half(label, f"e{i}")
        rekeyed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual(rekeyed["result"]["action"], "issued", rekeyed)
        self.assertEqual(rekeyed["key"], "web.2")
        self.assert_consistent(rekeyed)
        self.assertEqual(len(self.objects("pubkey", "web.2")), 1, "the leftover public half is still there")
        self.assertEqual(len(self.objects("privkey", "web.2")), 1)
        self.assertIn("left on the device by an interrupted key generation", self.agent.log_text())

    def test_a_leftover_of_the_pending_key_is_removed_at_start(self):
        self.start_agent()
        self.enroll()
        cli = TestCrashes.start_blocked_renewal(self, "--rekey")
        self.agent.proc.send_signal(signal.SIGKILL)
        self.agent.wait()
        self.unblock_helper()
        cli.communicate(timeout=60)
        self.set_mode("issue")
        # As if the crash had come inside C_GenerateKeyPair: only the public half of the
        # pending key made it to the token.
        self.agent.pkcs11_tool("--delete-object", "--type", "privkey", "--label", "web.2")
        self.assertEqual(len(self.objects("pubkey", "web.2")), 1)
        self.agent.start()
        self.view()  # the identity is entered (and reconciled) at its first use
        self.assertTrue(wait_until(lambda: not self.objects("pubkey", "web.2"), 20, 0.5),
                        "the leftover public half was not removed at start\n" + self.agent.log_tail())
        rekeyed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual((rekeyed["result"]["action"], rekeyed["key"]), ("issued", "web.2"), rekeyed)
        self.assert_consistent(rekeyed)

    def test_a_replaced_key_the_agent_no_longer_lists_is_removed_whole(self):
        self.options["grace_period"] = "3s"
        self.start_agent()
        self.enroll()
        self.cli("renew", "web", "--rekey")
        # Its private half goes some other way; after a restart the agent no longer lists it.
        self.agent.pkcs11_tool("--delete-object", "--type", "privkey", "--label", "web")
        self.agent.restart()
        self.assertEqual(len(self.objects("pubkey", "web")), 1)
        self.assertTrue(wait_until(lambda: not self.objects("pubkey", "web"), 30, 0.5),
                        "the public half of the replaced key stayed on the token\n" + self.agent.log_tail())
        self.assertEqual(self.view()["keys_to_destroy"], [])


class TestFailures(LifecycleCase):
    def test_rejection_is_reported_and_not_retried_in_a_loop(self):
        self.enroll()
        self.set_mode("reject")
        done = self.cli("renew", "web", "--now", check=False)
        self.assertEqual(done.rc, 1, done.stdout + done.stderr)
        self.assertIn("rejected by test CA policy", done.stderr)
        data = self.view()
        self.assertEqual(data["last_attempt"]["outcome"], "rejected")
        self.assertIn("rejected by test CA policy", data["last_attempt"]["message"])
        self.assertEqual(data["generation"], 1, "a rejection must keep the certificate in force")
        self.assertEqual(data["failures"], 1)
        self.assertTrue(data["held"])
        self.assertGreater(data["next_renewal_unix"], time.time() + 0.7 * 3600)
        self.assertEqual(data["status"], "renewal failing")
        self.assertRegex(self.cli("identities", "list").stdout, r"!\s+web\s+renewal failing")
        time.sleep(4)  # retry_min is 1s: a loop would have called the helper again by now
        self.assertEqual(len(self.helper_calls("SUBMIT")), 2)
        # A restart remembers the hold: no storm.
        self.agent.restart()
        time.sleep(3)
        self.assertEqual(len(self.helper_calls("SUBMIT")), 2)
        self.assertEqual(self.view()["last_attempt"]["outcome"], "rejected")
        # `renew` without --now respects the hold; --now overrides it.
        self.assertEqual(self.cli("renew", "web", json=True).data["result"]["action"], "not_due")
        self.set_mode("issue")
        self.assertEqual(self.cli("renew", "web", "--now", json=True).data["result"]["action"], "issued")
        data = self.view()
        self.assertEqual(data["failures"], 0)
        self.assertFalse(data["held"])

    def test_misconfigured_and_unsupported_helpers(self):
        for mode, text in (("underconfigured", "not configured completely"), ("unsupported", "does not support")):
            with self.subTest(mode=mode):
                self.set_mode(mode)
                done = self.cli("enroll", "web", check=False)
                self.assertEqual(done.rc, 1)
                data = self.view()
                self.assertEqual(data["last_attempt"]["outcome"], "misconfigured")
                self.assertIn(text, data["last_attempt"]["message"])
                self.assertTrue(data["held"])
                self.assertIsNone(data["generation"])

    def test_unreachable_backs_off_exponentially(self):
        self.options.update({"auto_enroll": True, "retry_min": "1s", "retry_max": "4s"})
        self.agent.kill()
        self.set_mode("unreachable")
        self.start_agent()
        time.sleep(9)
        calls = len(self.helper_calls("SUBMIT"))
        # Attempts at ~1s, then +0.8-1s, +1.6-2s, +3.2-4s, +3.2-4s: 4 or 5 in 9 s, never a loop.
        self.assertGreaterEqual(calls, 3, self.helper_calls())
        self.assertLessEqual(calls, 6, self.helper_calls())
        data = self.view()
        self.assertEqual(data["last_attempt"]["outcome"], "unreachable")
        self.assertIn("connection refused", data["last_attempt"]["message"])
        self.assertEqual(data["failures"], calls)
        self.assertFalse(data["held"])
        # The CA comes back: the next attempt enrolls by itself.
        self.set_mode("issue")
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 15, 0.5), self.agent.log_tail())
        self.assertEqual(self.view()["failures"], 0)

    def test_invalid_answers_keep_the_old_certificate(self):
        first = self.enroll()
        cases = (("wrongkey", "for another key"), ("serverauth", "lacks clientAuth"),
                 ("otherca", "fails verification"), ("garbage", "no PEM certificate"))
        for mode, text in cases:
            with self.subTest(mode=mode):
                self.set_mode(mode)
                done = self.cli("renew", "web", "--now", check=False)
                self.assertEqual(done.rc, 1, done.stdout)
                data = self.view()
                self.assertEqual(data["last_attempt"]["outcome"], "invalid")
                self.assertIn(text, data["last_attempt"]["message"])
                self.assertEqual(data["generation"], 1)
                self.assertEqual(data["serial"], first["serial"])
                self.assert_consistent(data)

    def test_rekey_failure_keeps_the_old_key_in_force_and_reuses_the_new_one(self):
        self.enroll()
        self.set_mode("reject")
        self.cli("renew", "web", "--rekey", check=False)
        data = self.view()
        self.assertEqual(data["key"], "web")
        self.assert_consistent(data)
        self.set_mode("issue")
        data = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual(data["key"], "web.2", "the key made for the failed attempt should be reused")
        keys = [k["name"] for k in self.cli("keys", "list", json=True).data["keys"]]
        self.assertEqual(sorted(keys), ["web", "web.2"])


class TestReload(LifecycleCase):
    def test_a_reload_keeps_the_state_and_a_changed_identity_lifts_a_hold(self):
        self.enroll()
        self.set_mode("reject")
        self.cli("renew", "web", "--now", check=False)
        self.assertTrue(self.view()["held"])
        # Same configuration: the hold stays.
        self.assertTrue(self.agent.reload())
        data = self.view()
        self.assertTrue(data["held"])
        self.assertEqual(data["generation"], 1)
        # A changed identity may be the fix: the hold is lifted.
        self.set_mode("issue")
        self.options["retry_max"] = "2h"
        self.write_config()
        self.assertTrue(self.agent.reload())
        # (at the new lifecycle's first check, within seconds)
        self.assertTrue(wait_until(lambda: not self.view()["held"], 15, 0.3), self.agent.log_tail())
        data = self.view()
        self.assertEqual(data["failures"], 0)
        self.assertEqual(data["generation"], 1)
        self.assert_consistent(data)
        # A broken identity is refused by the reload; the running one stays.
        self.options["renew_at"] = "7/3"
        self.write_config()
        self.assertFalse(self.agent.reload())
        self.assertEqual(self.view()["generation"], 1)


class TestHelperTimeout(LifecycleCase):
    auto_start = False

    def test_a_hanging_helper_is_killed_at_its_timeout(self):
        self.issuer["timeout"] = "2s"
        self.start_agent()
        self.set_mode("hang")
        started = time.monotonic()
        done = self.cli("enroll", "web", check=False)
        took = time.monotonic() - started
        self.assertEqual(done.rc, 1, done.stdout)
        self.assertLess(took, 15)
        data = self.view()
        self.assertEqual(data["last_attempt"]["outcome"], "unreachable")
        self.assertIn("timed out after 2s", data["last_attempt"]["message"])
        self.assertFalse(data["held"])
        with open(os.path.join(self.hdir, "hang.pid")) as f:
            pids = [int(p) for p in f.read().split()]
        for pid in pids:  # the helper and its child, killed as a group
            self.assertTrue(wait_until(lambda: not os.path.exists(f"/proc/{pid}") or
                                       open(f"/proc/{pid}/stat").read().split()[2] == "Z", 5),
                            f"helper process {pid} survived its timeout")
        self.set_mode("issue")
        self.assertEqual(self.cli("enroll", "web", json=True).data["generation"], 1)


class TestExpired(LifecycleCase):
    def test_an_expired_certificate_is_renewed_at_once(self):
        first = self.enroll()
        self.put_expired_certificate_in_force(first)
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 2, 20, 0.3),
                        "the expired certificate was not renewed at once\n" + self.agent.log_tail())
        data = self.view()
        self.assertEqual(data["status"], "valid")
        self.assertIn("renew=yes", self.helper_calls("SUBMIT")[-1])
        self.assert_consistent(data)


class TestPending(LifecycleCase):
    def poll_flow(self, mode):
        done = self.cli("enroll", "web", json=True).data
        self.assertEqual(done["result"]["action"], "pending", done)
        self.assertIsNotNone(done["pending"])
        self.assertEqual(done["status"], "enrolling")
        cookie = self.helper_calls("SUBMIT")[0]
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 20, 0.3),
                        "the agent did not poll to completion\n" + "\n".join(self.helper_calls()) + self.agent.log_tail())
        polls = self.helper_calls("POLL")
        self.assertEqual(len(polls), 1, polls)
        self.assertRegex(polls[0], r"cookie=cookie-\d+")
        self.assertEqual(len(self.helper_calls("SUBMIT")), 1, cookie)
        data = self.view()
        self.assertIsNone(data["pending"])
        self.assert_consistent(data)

    def test_wait_with_delay_then_poll_with_the_cookie(self):
        self.set_mode("wait5")
        self.poll_flow("wait5")

    def test_wait_then_poll_with_the_cookie(self):
        self.set_mode("wait1")
        self.poll_flow("wait1")

    def test_a_restart_keeps_the_pending_request_and_polls_it(self):
        self.set_mode("wait5")
        with open(os.path.join(self.hdir, "delay"), "w") as f:
            f.write("4\n")
        done = self.cli("enroll", "web", json=True).data
        self.assertEqual(done["result"]["action"], "pending", done)
        self.agent.restart()
        self.assertEqual(self.view()["status"], "enrolling")
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 25, 0.3), self.agent.log_tail())
        self.assertEqual(len(self.helper_calls("SUBMIT")), 1, "the request was submitted again after a restart")
        polls = self.helper_calls("POLL")
        self.assertEqual(len(polls), 1, polls)
        cookie = "cookie=cookie-"
        self.assertIn(cookie, polls[0])
        self.assert_consistent(self.view())


class TestHooks(LifecycleCase):
    auto_start = False

    def test_hooks_run_with_the_paths_and_a_failing_hook_does_not_undo(self):
        hook_ok = self.tmp.write("hook-ok.sh", f"#!/bin/sh\nenv > {self.tmp.join('hook.env')}\n"
                                               f"grep '^Groups:' /proc/self/status > {self.tmp.join('hook.groups')}\n"
                                               f"ls /proc/self/fd > {self.tmp.join('hook.fds')}\n", mode=0o755)
        hook_bad = self.tmp.write("hook-bad.sh", "#!/bin/sh\necho reload failed >&2\nexit 3\n", mode=0o755)
        self.options["hooks"] = [hook_ok, [hook_bad, "--flag"]]
        # The agent holds supplementary groups (as the service holds `tss`); its hooks must not.
        saved_groups = os.getgroups()
        os.setgroups([4, 24])
        try:
            self.start_agent()
        finally:
            os.setgroups(saved_groups)
        with open(f"/proc/{self.agent.pid}/status") as f:
            self.assertIn("Groups:\t4 24", f.read())
        first = self.enroll()
        with open(self.tmp.join("hook.groups")) as f:
            self.assertEqual(f.read().split(), ["Groups:"], "a hook runs with no supplementary groups")
        with open(self.tmp.join("hook.fds")) as f:
            fds = sorted(int(n) for n in f.read().split())
        # stdin, stdout, stderr and the fd `ls` itself opened for the directory: nothing of the agent's.
        self.assertEqual(fds[:3], [0, 1, 2])
        self.assertLessEqual(len(fds), 4, fds)
        with open(self.tmp.join("hook.env")) as f:
            env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
        self.assertEqual(env["KEYWARD_IDENTITY"], "web")
        self.assertEqual(env["KEYWARD_CERT"], first["files"]["cert"])
        self.assertEqual(env["KEYWARD_CHAIN"], first["files"]["chain"])
        self.assertEqual(env["KEYWARD_KEYREF"], first["files"]["keyref"])
        self.assertEqual(env["KEYWARD_KEY"], "web")
        self.assertNotIn(self.agent.user_pin(), "".join(env.values()))
        self.assertEqual(first["hooks"]["outcome"], "failed")
        self.assertIn("hook-bad.sh: exit code 3 (reload failed)", first["hooks"]["message"])
        self.assertIn("hook-bad.sh", first["result"]["message"])
        self.assert_consistent(first)
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued")
        self.assertEqual(renewed["generation"], 2, "a failing hook must not undo the renewal")
        self.assertIn("hooks:", self.cli("identities", "show", "web").stdout)


class TestCrashes(LifecycleCase):
    def start_blocked_renewal(self, *flags):
        fifo = os.path.join(self.hdir, "fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        self.set_mode("block")
        cli = subprocess.Popen([harness.cli_path(), "renew", "web", *flags],
                               env=dict(os.environ, KEYWARD_SOCKET=self.agent.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pid_file = os.path.join(self.hdir, "blocked.pid")
        self.assertTrue(wait_until(lambda: os.path.exists(pid_file) and os.path.getsize(pid_file) > 0, 60),
                        self.agent.log_tail())
        return cli

    def crash_and_restart(self, cli):
        self.agent.proc.send_signal(signal.SIGKILL)
        self.agent.wait()
        self.unblock_helper()
        _, err = cli.communicate(timeout=60)
        self.assertEqual(cli.returncode, harness.EXIT_UNREACHABLE, err)
        self.set_mode("issue")
        self.agent.start()

    def test_sigkill_while_the_ca_works_keeps_the_old_generation(self):
        first = self.enroll()
        cli = self.start_blocked_renewal("--now")
        self.crash_and_restart(cli)
        data = self.view()
        self.assertEqual(data["generation"], 1)
        self.assertEqual(data["serial"], first["serial"])
        self.assert_consistent(data)
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["generation"], 2)
        self.assert_consistent(renewed)

    def test_sigkill_during_a_rekey_keeps_the_old_key_and_reuses_the_new(self):
        self.enroll()
        cli = self.start_blocked_renewal("--rekey")
        self.crash_and_restart(cli)
        data = self.view()
        self.assertEqual((data["generation"], data["key"]), (1, "web"))
        self.assert_consistent(data)
        renewed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual((renewed["generation"], renewed["key"]), (2, "web.2"))
        self.assert_consistent(renewed)
        keys = sorted(k["name"] for k in self.cli("keys", "list", json=True).data["keys"])
        self.assertEqual(keys, ["web", "web.2"], "a crash must not leave orphan keys behind")

    def test_reload_during_a_renewal(self):
        """SIGHUP while the CA works: signing goes on meanwhile (the old lifecycle finishes
        off the event loop), the renewal in flight completes, and the new lifecycle takes over
        the identity without undoing or duplicating it."""
        self.enroll()
        cli = self.start_blocked_renewal("--now")
        mark = self.agent.log_size()
        self.agent.signal(signal.SIGHUP)
        self.agent.wait_for_log(r"configuration reloaded", timeout=20, since=mark)
        # The helper is still blocked: the agent must answer anyway.
        signed = self.cli("sign", "web", "--scheme", "ecdsa_secp256r1_sha256", "--digest", "ab" * 32, timeout=20)
        self.assertEqual(signed.rc, 0)
        with open(os.path.join(self.hdir, "fifo"), "w") as f:  # the CA answers
            f.write("go\n")
        os.unlink(os.path.join(self.hdir, "blocked.pid"))
        self.set_mode("issue")
        out, err = cli.communicate(timeout=120)
        self.assertEqual(cli.returncode, 0, err)
        self.agent.wait_for_log(r"configuration reloaded|reload failed", timeout=60)
        data = self.view()
        self.assertEqual(data["generation"], 2)
        self.assert_consistent(data)
        time.sleep(2)  # the new lifecycle's first check must leave generation 2 alone
        data = self.view()
        self.assertEqual((data["generation"], data["last_attempt"]["outcome"]), (2, "issued"))
        self.assertEqual(len(self.helper_calls("SUBMIT")), 2)
        self.assert_consistent(data)

    def test_sigterm_during_a_renewal_stops_at_once_and_keeps_the_old_generation(self):
        """A stop must not wait for a CA that takes its time: the helper is killed with its
        group, nothing is recorded for the cut-short attempt, and the next renewal works."""
        first = self.enroll()
        cli = self.start_blocked_renewal("--now")
        pid_file = os.path.join(self.hdir, "blocked.pid")
        with open(pid_file) as f:
            helper_group = int(f.read().strip())
        self.agent.stop(timeout=30)  # SIGTERM; the helper itself would block for minutes
        _, err = cli.communicate(timeout=60)
        self.assertEqual(cli.returncode, harness.EXIT_UNREACHABLE, err)

        def group_gone():
            try:
                os.killpg(helper_group, 0)
                return False
            except ProcessLookupError:
                return True
        self.assertTrue(wait_until(group_gone, 10), "the helper outlived the agent")
        os.unlink(pid_file)
        self.assertIn("attempt interrupted, the agent is stopping", self.agent.log_text())
        self.set_mode("issue")
        self.agent.start()
        data = self.view()
        self.assertEqual((data["generation"], data["serial"]), (1, first["serial"]))
        self.assertEqual(data["last_attempt"]["outcome"], "issued", "the interrupted attempt was recorded")
        self.assert_consistent(data)
        renewed = self.cli("renew", "web", "--now", json=True).data
        self.assertEqual(renewed["generation"], 2)
        self.assert_consistent(renewed)

    def test_sigkill_at_random_points_leaves_one_consistent_generation(self):
        """Rekey renewals killed at random moments (key generation, CSR, CA, write, switch,
        state): after each restart exactly one complete generation is in force, and no key
        is left on the device that the identity does not account for."""
        import random
        rng = random.Random(20261122)
        self.enroll()
        generations = set()
        for i in range(14):
            cli = subprocess.Popen([harness.cli_path(), "renew", "web", "--rekey"],
                                   env=dict(os.environ, KEYWARD_SOCKET=self.agent.socket),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.7))
            self.agent.proc.send_signal(signal.SIGKILL)
            self.agent.wait()
            cli.wait(60)
            self.agent.start()
            with self.subTest(round=i):
                data = self.view()
                self.assert_consistent(data)
                generations.add(data["generation"])
        renewed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued")
        self.assert_consistent(renewed)
        with open(os.path.join(renewed["dir"], "state.json")) as f:
            state = json.load(f)
        accounted = {renewed["key"], renewed["previous"]["key"]} | {d["key"] for d in state["destroy"]}
        if state.get("pending"):
            accounted.add(state["pending"]["key"])
        keys = {k["name"] for k in self.cli("keys", "list", json=True).data["keys"]}
        self.assertLessEqual(keys, accounted, f"orphan keys on the device: {sorted(keys - accounted)}")
        self.assertGreater(len(generations), 1, "no kill landed after a switch; the test did not exercise much")

    def test_sigkill_after_the_switch_runs_the_hooks_after_restart(self):
        self.agent.kill()
        marker = self.tmp.join("hook-ran")
        gate = self.tmp.join("hook-gate")
        os.mkfifo(gate)
        hook = self.tmp.write("hook.sh", f"#!/bin/sh\necho $$ > {self.tmp.join('hook.pid')}\n"
                                         f"[ -e {marker} ] || {{ touch {marker}; cat {gate} >/dev/null; }}\n"
                                         f"echo again >> {marker}\n", mode=0o755)
        self.options["hooks"] = [hook]
        self.start_agent()
        cli = subprocess.Popen([harness.cli_path(), "enroll", "web"], env=dict(os.environ, KEYWARD_SOCKET=self.agent.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertTrue(wait_until(lambda: os.path.exists(marker), 60), self.agent.log_tail())
        self.agent.proc.send_signal(signal.SIGKILL)
        self.agent.wait()
        with open(self.tmp.join("hook.pid")) as f:
            try:
                os.killpg(int(f.read()), signal.SIGKILL)
            except OSError:
                pass
        cli.communicate(timeout=60)
        self.agent.start()
        # The new generation is in force, and its hooks run (again) by themselves.
        self.assertTrue(wait_until(lambda: os.path.exists(marker) and "again" in open(marker).read(), 20, 0.3),
                        self.agent.log_tail())
        data = self.view()
        self.assertEqual(data["generation"], 1)
        self.assertEqual(data["hooks"]["outcome"], "ok")
        self.assertEqual(data["last_attempt"]["outcome"], "issued")
        self.assert_consistent(data)


class TestAutomaticRenewal(LifecycleCase):
    auto_start = False

    def test_the_agent_enrolls_and_renews_by_itself(self):
        # 2-day certificates renewed 5 s after they start: the agent renews without a command.
        self.options.update({"auto_enroll": True, "renew_before": "47h59m55s", "jitter": "0s"})
        self.start_agent()
        self.assertTrue(wait_until(lambda: (self.view()["generation"] or 0) >= 2, 40, 0.5),
                        "\n".join(self.helper_calls()) + self.agent.log_tail())
        data = self.view()
        self.assertEqual(data["last_attempt"]["outcome"], "issued")
        self.assert_consistent(data)
        status = self.cli("status").stdout
        self.assertIn("identities:", status)
        self.assertIn("web", status)


class TestMutualTls(LifecycleCase):
    def test_handshake_with_the_identity_files_through_the_provider(self):
        import provider_helpers as ph
        data = self.enroll()
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket)
        with ph.www_server(self.ca) as server:
            before = self.agent.signatures()
            result = ph.s_client(server.port, self.ca.cert, data["files"]["cert"], data["files"]["keyref"],
                                 env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, "web.example")
        # After a rekey the same paths carry the new pair.
        self.cli("renew", "web", "--rekey")
        with ph.www_server(self.ca) as server:
            before = self.agent.signatures()
            result = ph.s_client(server.port, self.ca.cert, data["files"]["cert"], data["files"]["keyref"],
                                 env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, "web.example")


class TestConfig(unittest.TestCase):
    def test_a_bad_identity_stops_the_agent_with_file_line_and_key(self):
        with TempDir("keyward-lifecycle-") as tmp:
            cfg = tmp.write("keyward.toml", "[identities.web]\nsubject = \"/CN=web\"\ntrust_anchors = \"/ca.pem\"\n"
                                            "renew_at = \"5/3\"\n[identities.web.issuer]\nkind = \"helper\"\n"
                                            "command = [\"/bin/true\"]\n")
            agent = Agent(tmp, config=cfg)
            try:
                agent.spawn()
                self.assertNotEqual(agent.wait(30), 0)
                self.assertIn("keyward.toml:4: identities.web.renew_at: expected a fraction", agent.log_text())
            finally:
                agent.kill()
                agent.forget()


class TestCertmongerLocalSubmit(LifecycleCase):
    auto_start = False

    def test_debian_certmonger_local_submit_helper(self):
        harness.require_program(LOCAL_SUBMIT)
        ca_dir = self.tmp.mkdir("local-ca")
        env = {"CERTMONGER_LOCAL_CA_DIR": ca_dir, "CERTMONGER_OPERATION": "FETCH-ROOTS"}
        roots = run([LOCAL_SUBMIT], env=env).stdout
        anchors = self.tmp.write("local-ca.pem", roots[roots.index("-----BEGIN CERTIFICATE-----"):])
        self.options["trust_anchors"] = anchors
        self.issuer = {"kind": "helper", "command": [LOCAL_SUBMIT], "environment": {"CERTMONGER_LOCAL_CA_DIR": ca_dir}}
        self.start_agent()
        data = self.enroll()
        self.assertEqual(data["generation"], 1)
        self.assertIn("Local Signing Authority", data["certificate_issuer"])
        self.assertEqual(data["certificate_sans"], ["dns:web.example"])
        openssl("verify", "-CAfile", anchors, data["files"]["cert"])
        renewed = self.cli("renew", "web", "--rekey", json=True).data
        self.assertEqual((renewed["generation"], renewed["key"]), (2, "web.2"))
        openssl("verify", "-CAfile", anchors, renewed["files"]["cert"])


class TestMissingPinFile(LifecycleCase):
    """A configured PKCS#11 token (SoftHSM2) whose PIN file is missing when the agent needs to
    log in: the attempt reports the file, nothing is lost, and the identity recovers once the
    file is there, without a restart."""

    auto_start = False
    TOKEN_PIN = "482913"

    def setUp(self):
        super().setUp()
        tokens = self.tmp.mkdir("softhsm-tokens")
        self.softhsm_conf = self.tmp.write("softhsm2.conf", f"directories.tokendir = {tokens}\n"
                                                           "objectstore.backend = file\nlog.level = ERROR\n")
        # A throw-away token for this test; its PIN on this command line is the fixture's, not keyward's.
        run(["softhsm2-util", "--init-token", "--free", "--label", "lifecycle", "--so-pin", "31415926",
             "--pin", self.TOKEN_PIN], env={"SOFTHSM2_CONF": self.softhsm_conf})
        self.pin_file = self.tmp.join("hsm.pin")
        self.options["token"] = "hsm"

    def write_config(self):
        tokens = ("[tokens.hsm]\nkind = \"pkcs11\"\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n"
                  f"uri = \"pkcs11:token=lifecycle\"\npin_file = \"{self.pin_file}\"\n\n")
        return self.tmp.write("keyward.toml", tokens + identity_toml("web", self.options, self.issuer))

    def start_agent(self):
        self.agent = Agent(self.tmp, config=self.write_config(), env={"SOFTHSM2_CONF": self.softhsm_conf})
        self.agent.start()
        return self.agent

    def put_pin_file(self):
        with open(self.pin_file + ".tmp", "w") as f:
            f.write(self.TOKEN_PIN + "\n")
        os.chmod(self.pin_file + ".tmp", 0o600)
        os.rename(self.pin_file + ".tmp", self.pin_file)

    def test_enrollment_waits_for_the_pin_file_and_then_happens_by_itself(self):
        self.options.update({"auto_enroll": True, "retry_min": "1s", "retry_max": "2s"})
        self.start_agent()  # no PIN file yet
        self.assertTrue(wait_until(lambda: self.view()["last_attempt"] is not None, 30, 0.3), self.agent.log_tail())
        view = self.view()
        self.assertFalse(view["generation"])
        self.assertIn(self.pin_file, view["last_attempt"]["message"], view["last_attempt"])
        status = self.cli("status", json=True).data
        self.assertIn("needs-pin", json.dumps(status), status)
        self.assertEqual(self.helper_calls(), [], "the CA was asked although no key could be made")
        self.assertNotIn(self.TOKEN_PIN, self.agent.log_text())

        self.put_pin_file()
        self.assertTrue(wait_until(lambda: self.view()["generation"] == 1, 30, 0.3),
                        "no enrollment after the PIN file appeared\n" + self.agent.log_tail())
        self.assert_consistent(self.view())
        self.assertNotIn(self.TOKEN_PIN, self.agent.log_text())

    def test_a_renewal_without_the_pin_file_keeps_the_certificate_in_force(self):
        self.put_pin_file()
        self.start_agent()
        first = self.enroll()
        with open(first["files"]["cert"]) as f:
            cert_text = f.read()
        self.agent.stop()
        os.rename(self.pin_file, self.pin_file + ".away")
        self.agent.start()  # the token cannot log in now
        done = self.cli("renew", "web", "--now", "--rekey", json=True, check=False)
        self.assertNotEqual(done.rc, 0, done.stdout)
        view = self.view()
        self.assertEqual(view["generation"], 1)
        self.assertEqual(view["status"], "renewal failing")  # shown prominently; the certificate still serves
        self.assertIn(self.pin_file, view["last_attempt"]["message"], view["last_attempt"])
        with open(first["files"]["cert"]) as f:
            self.assertEqual(f.read(), cert_text)
        self.assertEqual(len(self.helper_calls("SUBMIT")), 1, "the CA was asked without a device signature")

        os.rename(self.pin_file + ".away", self.pin_file)
        renewed = self.cli("renew", "web", "--now", "--rekey", json=True).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertEqual(renewed["generation"], 2)
        self.assert_consistent(renewed)


if __name__ == "__main__":
    harness.main()
