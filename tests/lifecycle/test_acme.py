#!/usr/bin/env python3
"""The lifecycle with the ACME issuer against a real pebble (PEBBLE_VA_ALWAYS_VALID): keyward
enroll, automatic renewal by the agent without any command, mTLS through the provider with
the identity's files (renewed ones included), and a rekey renewal. The ACME client itself is
tested in tests/acme; this is the whole path through keywardd."""

import os
import sys
import time
import unittest

_src = os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(_src, "tests", "integration"))
sys.path.insert(0, os.path.join(_src, "tests", "provider"))
sys.path.insert(0, os.path.join(_src, "tests", "acme"))
sys.path.insert(0, os.path.join(_src, "tests", "lifecycle"))

import harness  # noqa: E402
import provider_helpers as ph  # noqa: E402
from test_helper import identity_toml  # noqa: E402
import test_pebble  # noqa: E402  (pebble fixtures of tests/acme)

NAME = "agent.example.test"


class LifecycleWithPebble(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir("keyward-lifecycle-acme-")
        try:
            test_pebble.AcmeTestBase.make_listener_cert.__func__(cls)  # pebble's TLS listener certificate
            cls.pebble = test_pebble.Pebble(cls.tmp, "lifecycle", always_valid=True).start()
            cls.tls_ca = harness.TestCA(cls.tmp.join("tls-ca"))  # for the mTLS test server
            options = {
                "subject": f"/CN={NAME}",
                "sans": [f"dns:{NAME}"],
                "trust_anchors": cls.pebble.root_path,
                "auto_enroll": False,
                # pebble certificates live an hour: renew 10 s after they start.
                "renew_before": "3590s",
                "jitter": "0s",
                "retry_min": "2s",
            }
            issuer = {"kind": "acme", "directory": cls.pebble.directory, "ca_file": cls.tmp.join("tlsca.crt"),
                      "account_key": "acme-account", "timeout": 90,
                      "http01_listen": f"127.0.0.1:{harness.free_port()}"}
            config = cls.tmp.write("keyward.toml", identity_toml("web", options, issuer))
            cls.agent = harness.Agent(cls.tmp, config=config)
            cls.agent.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        agent = getattr(cls, "agent", None)
        if agent:
            agent.kill()
            agent.forget()
        if getattr(cls, "pebble", None):
            cls.pebble.stop()
        cls.tmp.cleanup()

    def view(self):
        return self.agent.cli("identities", "show", "web", json=True).data

    def assert_in_force(self, data):
        files = data["files"]
        harness.openssl("verify", "-CAfile", self.pebble.root_path, "-untrusted", files["chain"], files["cert"])
        cert_key = harness.openssl("x509", "-in", files["cert"], "-noout", "-pubkey").stdout
        self.assertEqual(cert_key.strip(), self.agent.pubkey(data["key"]).strip())

    def handshake(self, data):
        cert, key = self.tls_ca.server_cert()
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket)
        with harness.SServer(cert, key, self.pebble.root_path, extra_args=["-www"]) as server:
            before = self.agent.signatures()
            result = ph.s_client(server.port, self.tls_ca.cert, data["files"]["cert"], data["files"]["keyref"],
                                 extra=["-cert_chain", data["files"]["chain"]],
                                 env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, NAME)

    def test_enroll_renew_automatically_mtls_and_rekey(self):
        done = self.agent.cli("enroll", "web", json=True, timeout=300).data
        self.assertEqual(done["result"]["action"], "issued", done)
        self.assertEqual(done["issuer"], "acme")
        self.assertEqual(done["certificate_sans"], [f"dns:{NAME}"])
        self.assert_in_force(done)
        self.handshake(done)

        # No command from here: the agent renews by itself.
        renewed = harness.wait_until(lambda: (lambda v: v if v["generation"] >= 2 else None)(self.view()), 90, 1)
        self.assertTrue(renewed, "no automatic renewal\n" + self.agent.log_tail())
        self.assertEqual(renewed["last_attempt"]["outcome"], "issued")
        self.assertNotEqual(renewed["serial"], done["serial"])
        self.assertEqual(renewed["key"], "web")
        self.assert_in_force(renewed)
        self.handshake(renewed)

        rekeyed = self.agent.cli("renew", "web", "--rekey", json=True, timeout=300).data
        self.assertEqual(rekeyed["result"]["action"], "issued", rekeyed)
        self.assertNotEqual(rekeyed["key"], "web")
        self.assertTrue(rekeyed["key"].startswith("web."))
        self.assert_in_force(rekeyed)
        self.handshake(rekeyed)


if __name__ == "__main__":
    harness.main()
