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
API = "api.example.test"


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
            # "api": renewed only on request, so revocation tests see no renewal in between.
            api_options = dict(options, subject=f"/CN={API}", sans=[f"dns:{API}"])
            del api_options["renew_before"]
            api_issuer = dict(issuer, http01_listen=f"127.0.0.1:{harness.free_port()}")
            config = cls.tmp.write("keyward.toml", identity_toml("web", options, issuer) +
                                   identity_toml("api", api_options, api_issuer))
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

    def pebble_status(self, serial):
        """pebble's own record of a certificate (management interface): Status, Reason."""
        import json
        return json.loads(self.pebble.fetch(
            f"https://127.0.0.1:{self.pebble.mgmt_port}/cert-status-by-serial/{serial.lower()}"))

    def test_revoke_through_acme_then_rekey_compromised_then_retire(self):
        cli = self.agent.cli
        data = cli("renew", "api", "--now", json=True, timeout=300).data
        self.assertEqual(data["result"]["action"], "issued", data)
        self.assertEqual(self.pebble_status(data["serial"])["Status"], "Valid")

        revoked = cli("identities", "revoke", "api", "--reason", "keyCompromise", json=True, timeout=300).data
        self.assertEqual(revoked["result"]["action"], "revoked", revoked)
        self.assertEqual(revoked["status"], "revoked")
        serial = revoked["revocation"]["serial"]
        self.assertEqual(serial, revoked["serial"])
        self.assertEqual(revoked["revocation"]["reason"], "keyCompromise")
        status = self.pebble_status(serial)
        self.assertEqual((status["Status"], status["Reason"]), ("Revoked", 1), status)
        self.assertTrue(revoked["held"], "automatic renewal must wait for the operator")
        listing = cli("identities", "list").stdout
        self.assertRegex(listing, r"!\s+api\s+revoked")
        # Revoking again: pebble says alreadyRevoked, which is no failure.
        again = cli("identities", "revoke", "api", json=True, timeout=300).data
        self.assertEqual(again["result"]["action"], "revoked", again)
        bad = cli("identities", "revoke", "api", "--reason", "whim", check=False)
        self.assertNotEqual(bad.rc, 0)
        self.assertIn("unknown revocation reason", bad.stderr)

        # The next certificate after a keyCompromise revocation is for a new key.
        renewed = cli("renew", "api", "--now", json=True, timeout=300).data
        self.assertEqual(renewed["result"]["action"], "issued", renewed)
        self.assertEqual(renewed["status"], "valid")
        self.assertNotEqual(renewed["key"], revoked["key"])
        self.assertEqual(renewed["keys_to_destroy"], [], "the revoked key must go at once, not after a grace period")
        self.assert_in_force(renewed)

        # A rekey for a compromised key revokes the replaced certificate and destroys its key at once.
        compromised = cli("renew", "api", "--compromised", json=True, timeout=300).data
        self.assertEqual(compromised["result"]["action"], "issued", compromised)
        self.assertIn("replaced certificate was revoked", compromised["result"]["message"])
        self.assertNotEqual(compromised["key"], renewed["key"])
        status = self.pebble_status(renewed["serial"])
        self.assertEqual((status["Status"], status["Reason"]), ("Revoked", 1), status)
        self.assertEqual(self.pebble_status(compromised["serial"])["Status"], "Valid")
        keys = [k["name"] for k in cli("keys", "list", json=True).data["keys"]]
        self.assertNotIn(renewed["key"], keys, "the compromised key is still on the device")
        self.assertEqual(compromised["keys_to_destroy"], [])

        # Retirement: revoked, nothing in force, no key left; an enroll starts afresh.
        no = cli("identities", "revoke", "api", "--retire", check=False, input="")
        self.assertEqual(no.rc, harness.EXIT_USAGE, no.stderr)
        self.assertIn("--yes", no.stderr)
        retired = cli("identities", "revoke", "api", "--retire", "--yes", "--reason", "cessationOfOperation",
                      json=True, timeout=300).data
        self.assertEqual(retired["result"]["action"], "retired", retired)
        self.assertEqual(retired["status"], "retired")
        self.assertIsNone(retired["generation"])
        self.assertIsNone(retired["next_renewal"])
        status = self.pebble_status(compromised["serial"])
        self.assertEqual((status["Status"], status["Reason"]), ("Revoked", 5), status)
        self.assertFalse(os.path.exists(compromised["files"]["cert"]))
        self.assertFalse([n for n in os.listdir(retired["dir"]) if n.startswith("gen-")])
        keys = [k["name"] for k in cli("keys", "list", json=True).data["keys"]]
        self.assertEqual([k for k in keys if k == "api" or k.startswith("api.")], [], keys)
        self.assertIn("acme-account", keys)
        fresh = cli("enroll", "api", json=True, timeout=300).data
        self.assertEqual(fresh["result"]["action"], "issued", fresh)
        self.assertEqual((fresh["status"], fresh["generation"], fresh["key"]), ("valid", 1, "api"))
        self.assert_in_force(fresh)


if __name__ == "__main__":
    harness.main()
