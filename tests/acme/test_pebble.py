"""ACME issuer against a real pebble: the account key and the certificate key live in a real
keywardd (SoftHSM2 token); tests/acme/acme_issue drives the issuer the way the lifecycle does.

- PEBBLE_VA_ALWAYS_VALID=1: issue, chain verifies against pebble's root, account reused,
  account forgotten by the CA re-registered, misconfiguration and CA-down answers.
- A real http-01 challenge answered by keyward's own responder, checked by pebble's validator
  (pebble-challtestsrv resolves the test names to 127.0.0.1), and one that must fail.
- A real dns-01 challenge through a hook that publishes the TXT record in pebble-challtestsrv.
"""

import json
import os
import re
import ssl
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
import harness  # noqa: E402

NAME = "agent.example.test"
EXIT = {"issued": 0, "pending": 10, "rejected": 11, "unreachable": 12, "misconfigured": 13}


def acme_issue_path():
    path = os.environ.get("KEYWARD_ACME_ISSUE") or os.path.join(harness.bin_dir(), "tests", "acme", "acme_issue")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"acme_issue driver missing at {path} (build tests/acme first)")
    return path


class Pebble:
    """pebble on loopback with its own TLS listener certificate; roots fetched at start."""

    def __init__(self, tmp, tag, always_valid, dns_server=None):
        self.tmp = tmp
        self.tag = tag
        self.port = harness.free_port()
        self.mgmt_port = harness.free_port()
        self.http_port = harness.free_port()
        self.log_path = tmp.join(f"pebble-{tag}.log")
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": tmp.join("pebble.crt"), "privateKey": tmp.join("pebble.key"),
            "httpPort": self.http_port, "tlsPort": harness.free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": 3600}}
        self.config_path = tmp.write(f"pebble-{tag}.json", json.dumps(config))
        self.env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_VA_ALWAYS_VALID="1" if always_valid else "0")
        self.argv = [harness.require_program("pebble"), "-config", self.config_path]
        if dns_server:
            self.argv += ["-dnsserver", dns_server]
        self.proc = None

    @property
    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        for port in (self.port, self.mgmt_port):
            harness.wait_for_port(port, self.proc, "pebble", self.log_text)
        self.root_path = self.tmp.join(f"pebble-{self.tag}-root.pem")
        with open(self.root_path, "w") as f:
            f.write(self.fetch(f"https://127.0.0.1:{self.mgmt_port}/roots/0"))
        return self

    def fetch(self, url):
        ctx = ssl.create_default_context(cafile=self.tmp.join("tlsca.crt"))
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.read().decode()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        harness.end_process(self.proc)
        if self.proc:
            self.log.close()
        self.proc = None


class ChallTestSrv:
    """pebble-challtestsrv as pebble's DNS: every A query answers 127.0.0.1, TXT records
    are set through its management API."""

    def __init__(self, tmp):
        self.dns_port = harness.free_port()
        self.mgmt_port = harness.free_port()
        self.log = open(tmp.join("challtestsrv.log"), "ab")
        self.proc = subprocess.Popen(
            [harness.require_program("pebble-challtestsrv"), "-dns01", f"127.0.0.1:{self.dns_port}",
             "-management", f"127.0.0.1:{self.mgmt_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_for_port(self.mgmt_port, self.proc, "pebble-challtestsrv")

    def stop(self):
        harness.end_process(self.proc)
        self.log.close()


class AcmeTestBase(unittest.TestCase):
    always_valid = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir(f"keyward-acme-{cls.__name__}-")
        cls.servers = []
        try:
            cls.make_listener_cert()
            cls.agent = harness.Agent(cls.tmp)
            cls.agent.start()
            cls.agent.create_key("client")
            cls.csr = cls.agent.csr("client", cls.tmp.join("client.csr"), subject=f"/CN={NAME}",
                                    sans=[f"dns:{NAME}"])
            cls.start_servers()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_servers(cls):
        cls.pebble = Pebble(cls.tmp, "always-valid", always_valid=True).start()
        cls.servers.append(cls.pebble)

    @classmethod
    def tearDownClass(cls):
        for s in reversed(getattr(cls, "servers", [])):
            s.stop()
        agent = getattr(cls, "agent", None)
        if agent:
            if agent.alive():
                agent.stop()
            agent.kill()
            agent.forget()
        cls.tmp.cleanup()

    @classmethod
    def make_listener_cert(cls):
        t = cls.tmp
        harness.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", t.join("tlsca.key"), "-out", t.join("tlsca.crt"), "-days", "2",
                        "-subj", "/CN=pebble listener CA", "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign")
        t.write("srv.ext", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                           "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        harness.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", t.join("pebble.key"), "-subj", "/CN=localhost", "-out", t.join("pebble.csr"))
        harness.openssl("x509", "-req", "-in", t.join("pebble.csr"), "-CA", t.join("tlsca.crt"),
                        "-CAkey", t.join("tlsca.key"), "-CAcreateserial", "-days", "2",
                        "-extfile", t.join("srv.ext"), "-out", t.join("pebble.crt"))

    # -- helpers --

    def issuer_config(self, tag, directory=None, **extra):
        values = {"kind": "acme", "directory": directory or self.pebble.directory,
                  "ca_file": self.tmp.join("tlsca.crt"), "account_key": "acme-account", "timeout": 90,
                  "http01_listen": f"127.0.0.1:{harness.free_port()}"}
        values.update(extra)
        lines = ["[issuer]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
        return self.tmp.write(f"issuer-{tag}.toml", "\n".join(lines) + "\n")

    def issue(self, tag, config, state_dir=None, csr=None, cookie=None, timeout=180, env=None):
        state_dir = state_dir or self.tmp.join(f"state-{tag}")
        argv = [acme_issue_path(), "--socket", self.agent.socket, "--config", config, "--state-dir", state_dir,
                "--csr", csr or self.csr, "--key", "client",
                "--cert", self.tmp.join(f"{tag}-cert.pem"), "--chain", self.tmp.join(f"{tag}-chain.pem")]
        if cookie:
            argv += ["--cookie", cookie]
        done = harness.run(argv, check=False, timeout=timeout, context=self.agent.log_tail, env=env)
        return done, self.tmp.join(f"{tag}-cert.pem"), self.tmp.join(f"{tag}-chain.pem")

    def assertIssued(self, done, cert, chain, root):
        self.assertEqual(done.rc, 0, done.describe())
        self.assertTrue(done.stdout.startswith("issued: "), done.describe())
        harness.openssl("verify", "-CAfile", root, "-untrusted", chain, "-purpose", "sslclient", cert)
        text = harness.openssl("x509", "-in", cert, "-noout", "-text").stdout
        self.assertIn(f"DNS:{NAME}", text)
        self.assertIn("TLS Web Client Authentication", text)
        cert_key = harness.openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
        self.assertEqual(cert_key.strip(), self.agent.pubkey("client").strip(), "certificate is not for the device key")
        with open(chain) as f:
            self.assertGreaterEqual(f.read().count("BEGIN CERTIFICATE"), 1, "no intermediate in the chain")
        with open(cert) as f:
            self.assertEqual(f.read().count("BEGIN CERTIFICATE"), 1, "cert_pem must hold the end-entity only")


class AlwaysValidTest(AcmeTestBase):
    """pebble with PEBBLE_VA_ALWAYS_VALID=1."""

    def test_1_issue_with_device_account_key(self):
        before = self.agent.signatures()
        done, cert, chain = self.issue("first", self.issuer_config("first"))
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        key = self.agent.cli("keys", "show", "acme-account", json=True).data
        self.assertEqual(key["type"], "ec-p256", key)
        # newAccount, newOrder, authz, challenge, finalize, order, certificate: all signed by the agent
        self.assertGreaterEqual(self.agent.signatures() - before, 6)
        with open(self.tmp.join("state-first", "acme-account.json")) as f:
            state = json.load(f)
        self.assertEqual(state["directory"], self.pebble.directory)
        self.assertRegex(state["url"], r"^https://127\.0\.0\.1:\d+/my-account/")
        self.assertEqual(oct(os.stat(self.tmp.join("state-first", "acme-account.json")).st_mode & 0o777), "0o600")

    def test_2_account_is_reused(self):
        config = self.issuer_config("reuse")
        done, cert, chain = self.issue("reuse", config)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        path = self.tmp.join("state-reuse", "acme-account.json")
        with open(path) as f:
            first = json.load(f)
        mtime = os.stat(path).st_mtime_ns
        done, cert, chain = self.issue("reuse", config)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        with open(path) as f:
            self.assertEqual(json.load(f), first)
        self.assertEqual(os.stat(path).st_mtime_ns, mtime, "the account was registered again")

    def test_3_account_unknown_to_the_ca_is_registered_again(self):
        state_dir = self.tmp.mkdir("state-forgotten")
        config = self.issuer_config("forgotten")
        done, cert, chain = self.issue("forgotten", config, state_dir=state_dir)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        path = os.path.join(state_dir, "acme-account.json")
        with open(path) as f:
            state = json.load(f)
        bogus = re.sub(r"/my-account/.*$", "/my-account/999999", state["url"])
        state["url"] = bogus
        with open(path, "w") as f:
            json.dump(state, f)
        done, cert, chain = self.issue("forgotten", config, state_dir=state_dir)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        with open(path) as f:
            self.assertNotEqual(json.load(f)["url"], bogus)

    def test_4_ca_down_is_unreachable(self):
        port = harness.free_port()
        started = time.monotonic()
        done, _, _ = self.issue("down", self.issuer_config("down", directory=f"https://127.0.0.1:{port}/dir"))
        self.assertEqual(done.rc, EXIT["unreachable"], done.describe())
        self.assertIn("cannot connect", done.stdout)
        self.assertLess(time.monotonic() - started, 30)

    def test_5_untrusted_server_is_misconfigured(self):
        harness.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.tmp.join("other.key"), "-out", self.tmp.join("other.crt"), "-days", "1",
                        "-subj", "/CN=other CA")
        done, _, _ = self.issue("untrusted", self.issuer_config("untrusted", ca_file=self.tmp.join("other.crt")))
        self.assertEqual(done.rc, EXIT["misconfigured"], done.describe())
        self.assertIn("not trusted", done.stdout)

    def test_6_csr_names_checked(self):
        bad_cn = self.agent.csr("client", self.tmp.join("badcn.csr"), subject="/CN=other.example.test",
                                sans=[f"dns:{NAME}"])
        done, _, _ = self.issue("badcn", self.issuer_config("badcn"), csr=bad_cn)
        self.assertEqual(done.rc, EXIT["misconfigured"], done.describe())
        self.assertIn("common name", done.stdout)
        no_names = self.agent.csr("client", self.tmp.join("nonames.csr"), subject="/O=no names")
        done, _, _ = self.issue("nonames", self.issuer_config("nonames"), csr=no_names)
        self.assertEqual(done.rc, EXIT["misconfigured"], done.describe())
        self.assertIn("subjectAltName", done.stdout)

    def test_6b_ip_identifier(self):
        # RFC 8738 "ip" identifiers from the CSR's iPAddress SANs (this pebble accepts them).
        ip = self.agent.csr("client", self.tmp.join("ip.csr"), subject="/CN=127.0.0.1",
                            sans=["ip:127.0.0.1", f"dns:{NAME}", f"dns:{NAME}"])  # a duplicate is sent once
        done, cert, chain = self.issue("ip", self.issuer_config("ip"), csr=ip)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        self.assertIn("IP Address:127.0.0.1", harness.openssl("x509", "-in", cert, "-noout", "-text").stdout)

    def test_7_missing_account_key_device_error_is_clear(self):
        done, _, _ = self.issue("badtoken", self.issuer_config("badtoken", account_key="acme-other",
                                                                account_key_token="no-such-token"))
        self.assertIn(done.rc, (EXIT["misconfigured"], EXIT["unreachable"]), done.describe())
        self.assertIn('ACME account key "acme-other"', done.stdout)


class RealChallengeTest(AcmeTestBase):
    """pebble validating for real, with pebble-challtestsrv as its DNS server."""

    @classmethod
    def start_servers(cls):
        cls.dns = ChallTestSrv(cls.tmp)
        cls.servers.append(cls.dns)
        cls.pebble = Pebble(cls.tmp, "validating", always_valid=False,
                            dns_server=f"127.0.0.1:{cls.dns.dns_port}").start()
        cls.servers.append(cls.pebble)

    def test_1_http01_answered_by_keyward(self):
        config = self.issuer_config("http01", http01_listen=f"127.0.0.1:{self.pebble.http_port}")
        done, cert, chain = self.issue("http01", config)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        # pebble's validator fetched the token from keyward's responder (nothing else listens there)
        self.assertRegex(self.pebble.log_text(), "Attempting to validate w/ HTTP: http://" + re.escape(NAME) +
                         f":{self.pebble.http_port}/\\.well-known/acme-challenge/")

    def test_2_http01_nobody_answering_is_rejected(self):
        # keyward answers on a port pebble's validator does not use: validation must fail.
        other = self.agent.csr("client", self.tmp.join("other.csr"), subject="/CN=wrong-port.example.test",
                               sans=["dns:wrong-port.example.test"])
        config = self.issuer_config("wrongport", http01_listen=f"127.0.0.1:{harness.free_port()}")
        done, _, _ = self.issue("wrongport", config, csr=other)
        self.assertEqual(done.rc, EXIT["rejected"], done.describe())
        self.assertIn("wrong-port.example.test", done.stdout)

    def test_3_dns01_through_a_hook(self):
        calls = self.tmp.join("hook-calls.log")
        hook = self.tmp.write("dns-hook.py", f"""#!/usr/bin/python3
import json, os, urllib.request
env = {{k: v for k, v in os.environ.items() if k.startswith("KEYWARD_ACME_")}}
with open({calls!r}, "a") as f:
    f.write(json.dumps(env) + "\\n")
action = env["KEYWARD_ACME_ACTION"]
body = {{"host": env["KEYWARD_ACME_RECORD"] + "."}}
if action == "present":
    body["value"] = env["KEYWARD_ACME_TXT"]
path = "set-txt" if action == "present" else "clear-txt"
req = urllib.request.Request("http://127.0.0.1:{self.dns.mgmt_port}/" + path, data=json.dumps(body).encode())
urllib.request.urlopen(req, timeout=10).read()
""", mode=0o755)
        dns_csr = self.agent.csr("client", self.tmp.join("dns.csr"), subject="/CN=dns.example.test",
                                 sans=["dns:dns.example.test"])
        config = self.issuer_config("dns01", challenge="dns-01", dns01_hook=[hook], http01_listen=None)
        done, cert, chain = self.issue("dns01", config, csr=dns_csr)
        self.assertEqual(done.rc, 0, done.describe())
        harness.openssl("verify", "-CAfile", self.pebble.root_path, "-untrusted", chain, cert)
        with open(calls) as f:
            seen = [json.loads(line) for line in f]
        self.assertEqual([c["KEYWARD_ACME_ACTION"] for c in seen], ["present", "cleanup"], seen)
        self.assertEqual(seen[0]["KEYWARD_ACME_DOMAIN"], "dns.example.test")
        self.assertEqual(seen[0]["KEYWARD_ACME_RECORD"], "_acme-challenge.dns.example.test")
        self.assertRegex(seen[0]["KEYWARD_ACME_TXT"], r"^[A-Za-z0-9_-]{43}$")
        self.assertEqual(seen[0]["KEYWARD_ACME_TXT"], seen[1]["KEYWARD_ACME_TXT"])


if __name__ == "__main__":
    harness.main()
