#!/usr/bin/env python3
"""The openssl tool with agent-held keys through the provider: CSRs that verify, a CA whose
key is in the agent issuing a certificate that `openssl verify` accepts, digest signing
and prehashed signing (pkeyutl) checked with the public key alone, the public key
exported through our SPKI encoder, and clear refusals of what the agent cannot do."""

import os

import provider_helpers as ph
from provider_helpers import harness

KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048"]


class OpenSSLToolsTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = {"KEYWARD_SOCKET": cls.agent.socket, "OPENSSL_CONF": None}
        cls.message = cls.tmp.write("message.txt", "signed by a key nobody can read\n")
        cls.keys = {}
        for t in KEY_TYPES:
            name = "k-" + t
            cls.agent.create_key(name, t)
            cls.keys[t] = (name, cls.agent.pubkey(name, cls.tmp.join(name + ".pub")) and cls.tmp.join(name + ".pub"))
            cls.agent.cli("keys", "ref", name, "--out", cls.tmp.join(name + ".keyref"))
        cls.agent.create_key("ca-key", "ec-p384")

    def ossl(self, *args, check=True):
        return harness.run([harness.require_program("openssl"), args[0], *ph.provider_args(), *args[1:]],
                           env=self.env, check=check, context=self.agent.log_tail)

    def test_req_makes_csrs_that_verify(self):
        for t, (name, _) in self.keys.items():
            with self.subTest(key=t):
                csr = self.tmp.join(f"{name}.csr")
                before = self.agent.signatures()
                self.ossl("req", "-new", "-key", f"keyward:{name}", "-subj", f"/CN={name}", "-out", csr)
                self.assertGreater(self.agent.signatures(), before)
                done = harness.openssl("req", "-in", csr, "-verify", "-noout")
                self.assertIn("verify OK", done.stdout + done.stderr)
                # The CSR carries the agent's public key.
                pub = harness.openssl("req", "-in", csr, "-pubkey", "-noout").stdout
                self.assertEqual(pub.strip(), self.agent.pubkey(name).strip())

    def test_req_with_rsa_pss(self):
        name, _ = self.keys["rsa-2048"]
        csr = self.tmp.join("pss.csr")
        self.ossl("req", "-new", "-key", f"keyward:{name}", "-subj", "/CN=pss", "-sigopt", "rsa_padding_mode:pss",
                  "-sigopt", "rsa_pss_saltlen:digest", "-sha384", "-out", csr)
        done = harness.openssl("req", "-in", csr, "-verify", "-noout", "-text")
        self.assertIn("verify OK", done.stdout + done.stderr)
        self.assertIn("rsassaPss", done.stdout)
        self.assertRegex(done.stdout, r"Salt Length: 0x30")

    def test_x509_ca_with_agent_held_key_issues_verifiable_certificate(self):
        ca_cert = self.tmp.join("agent-ca.crt")
        self.ossl("req", "-new", "-x509", "-key", "keyward:ca-key", "-subj", "/CN=keyward agent CA", "-days", "2",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                  "-out", ca_cert)
        leaf_key = self.tmp.join("leaf.key")
        leaf_csr = self.tmp.join("leaf.csr")
        harness.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", leaf_key)
        harness.openssl("req", "-new", "-key", leaf_key, "-subj", "/CN=leaf", "-out", leaf_csr)
        leaf = self.tmp.join("leaf.crt")
        before = self.agent.signatures()
        self.ossl("x509", "-req", "-in", leaf_csr, "-CA", ca_cert, "-CAkey", "keyward:ca-key", "-set_serial", "42",
                  "-days", "1", "-out", leaf)
        self.assertGreater(self.agent.signatures(), before)
        done = harness.openssl("verify", "-CAfile", ca_cert, leaf)
        self.assertIn(f"{leaf}: OK", done.stdout)
        # A CA key that does not match the CA certificate is refused.
        wrong = self.ossl("x509", "-req", "-in", leaf_csr, "-CA", ca_cert, "-CAkey", f"keyward:{self.keys['ec-p256'][0]}",
                          "-set_serial", "43", "-out", self.tmp.join("wrong.crt"), check=False)
        self.assertNotEqual(wrong.rc, 0, wrong.describe())

    def test_pkey_pubout_through_the_spki_encoder(self):
        for t, (name, pub) in self.keys.items():
            with self.subTest(key=t):
                for form in ("PEM", "DER"):
                    out = self.tmp.join(f"{name}.{form}")
                    self.ossl("pkey", "-in", f"keyward:{name}", "-pubout", "-outform", form, "-out", out)
                    ref = harness.openssl("pkey", "-pubin", "-in", pub, "-pubout", "-outform", form).stdout_bytes
                    with open(out, "rb") as f:
                        self.assertEqual(f.read(), ref)

    def test_private_key_is_never_written(self):
        name, _ = self.keys["ec-p256"]
        done = self.ossl("pkey", "-in", f"keyward:{name}", "-out", self.tmp.join("stolen.pem"), check=False)
        self.assertNotEqual(done.rc, 0, done.describe())
        path = self.tmp.join("stolen.pem")
        self.assertFalse(os.path.exists(path) and "PRIVATE KEY" in open(path).read())

    def test_dgst_sign_verifies_with_the_public_key(self):
        for t, (name, pub) in self.keys.items():
            for md in ("sha256", "sha384", "sha512"):
                for key in (f"keyward:{name}", self.tmp.join(name + ".keyref")):
                    with self.subTest(key=t, md=md, form=key[:8]):
                        sig = self.tmp.join(f"{name}.{md}.sig")
                        self.ossl("dgst", f"-{md}", "-sign", key, "-out", sig, self.message)
                        harness.openssl("dgst", f"-{md}", "-verify", pub, "-signature", sig, self.message)

    def test_dgst_rsa_pss_salt_lengths(self):
        name, pub = self.keys["rsa-2048"]
        for salt in ("digest", "auto", "max", "32"):
            with self.subTest(saltlen=salt):
                sig = self.tmp.join(f"pss-{salt}.sig")
                self.ossl("dgst", "-sha256", "-sign", f"keyward:{name}", "-sigopt", "rsa_padding_mode:pss",
                          "-sigopt", f"rsa_pss_saltlen:{salt}", "-out", sig, self.message)
                harness.openssl("dgst", "-sha256", "-verify", pub, "-sigopt", "rsa_padding_mode:pss",
                                "-sigopt", "rsa_pss_saltlen:32", "-signature", sig, self.message)

    def test_unsupported_requests_are_refused_clearly(self):
        name, _ = self.keys["rsa-2048"]
        done = self.ossl("dgst", "-sha256", "-sign", f"keyward:{name}", "-sigopt", "rsa_padding_mode:pss",
                         "-sigopt", "rsa_pss_saltlen:20", "-out", self.tmp.join("x.sig"), self.message, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("salt length 20", done.stderr)
        done = self.ossl("dgst", "-sha256", "-sign", f"keyward:{name}", "-sigopt", "rsa_padding_mode:none",
                         "-out", self.tmp.join("x.sig"), self.message, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("keyward", done.stderr)

    def test_pkeyutl_signs_prehashed_input(self):
        digest = self.tmp.join("digest.bin")
        harness.openssl("dgst", "-sha256", "-binary", "-out", digest, self.message)
        for t, (name, pub) in self.keys.items():
            with self.subTest(key=t):
                sig = self.tmp.join(f"{name}.pkeyutl.sig")
                self.ossl("pkeyutl", "-sign", "-inkey", f"keyward:{name}", "-in", digest, "-out", sig,
                          "-pkeyopt", "digest:sha256")
                done = harness.openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", digest, "-sigfile",
                                       sig, "-pkeyopt", "digest:sha256")
                self.assertIn("Signature Verified Successfully", done.stdout)
        # ECDSA needs no declared digest: the hash value is all it signs.
        name, pub = self.keys["ec-p256"]
        sig = self.tmp.join("raw.sig")
        self.ossl("pkeyutl", "-sign", "-inkey", f"keyward:{name}", "-in", digest, "-out", sig)
        harness.openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", digest, "-sigfile", sig)
        # RSA without a digest would be a raw RSA operation: refused.
        name, _ = self.keys["rsa-2048"]
        done = self.ossl("pkeyutl", "-sign", "-inkey", f"keyward:{name}", "-in", digest, "-out", sig, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("set a digest", done.stderr)

    def test_damaged_key_reference_is_reported(self):
        name, _ = self.keys["ec-p256"]
        with open(self.tmp.join(name + ".keyref")) as f:
            text = f.read()
        truncated = self.tmp.write("truncated.keyref", text[:120] + "\n-----END KEYWARD KEY-----\n")
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket, name="damaged.cnf")
        done = harness.run([harness.require_program("openssl"), "pkey", "-in", truncated, "-pubout"],
                           env={"OPENSSL_CONF": cnf}, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("keyward: invalid keyward key reference", done.stderr, done.describe())

    def test_unknown_key_is_named_in_the_error(self):
        done = self.ossl("pkey", "-in", "keyward:does-not-exist", "-pubout", check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("keyward: no such key does-not-exist", done.stderr)


if __name__ == "__main__":
    harness.main()
