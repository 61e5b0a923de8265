"""Every signature scheme, made by keywardd on SoftHSM2 through `keyward sign`, verifies with
OpenSSL against the key's public key from `keyward keys pubkey`."""

import hashlib
import os

import harness
from harness import SCHEMES, AgentTestCase, openssl, schemes_for

KEYS = {"sig-p256": "ec-p256", "sig-p384": "ec-p384", "sig-rsa2048": "rsa-2048", "sig-rsa3072": "rsa-3072"}


def pss_options(flag, family):
    if family != "pss":
        return []
    return [flag, "rsa_padding_mode:pss", flag, "rsa_pss_saltlen:digest"]


class TestSign(AgentTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pub = {}
        for name, key_type in KEYS.items():
            cls.agent.create_key(name, key_type)
            cls.pub[name] = cls.tmp.join(f"{name}.pub.pem")
            cls.agent.pubkey(name, cls.pub[name])
        cls.message = cls.tmp.write("message.bin", os.urandom(5000) + b"keyward signs this\n")
        cls.tampered = cls.tmp.write("tampered.bin", open(cls.message, "rb").read() + b"!")

    def verify_file(self, name, scheme, sig, data_file):
        digest, family = SCHEMES[scheme]
        return openssl("dgst", f"-{digest}", *pss_options("-sigopt", family), "-verify", self.pub[name],
                       "-signature", sig, data_file, check=False)

    def verify_digest(self, name, scheme, sig, digest_file):
        digest, family = SCHEMES[scheme]
        return openssl("pkeyutl", "-verify", "-pubin", "-inkey", self.pub[name], "-in", digest_file, "-sigfile", sig,
                       "-pkeyopt", f"digest:{digest}", *pss_options("-pkeyopt", family), check=False)

    def test_every_scheme_signs_a_file_that_openssl_verifies(self):
        for name, key_type in KEYS.items():
            for scheme in schemes_for(key_type):
                with self.subTest(key=name, scheme=scheme):
                    sig = self.tmp.join(f"{name}.{scheme}.sig")
                    self.agent.cli("sign", name, "--scheme", scheme, "--in", self.message, "--out", sig)
                    ok = self.verify_file(name, scheme, sig, self.message)
                    self.assertEqual(ok.rc, 0, f"{scheme} signature by {name} does not verify:\n" + ok.describe())
                    self.assertIn("Verified OK", ok.stdout)
                    # The verifier really checks: the same signature over other data is refused.
                    bad = self.verify_file(name, scheme, sig, self.tampered)
                    self.assertNotEqual(bad.rc, 0, "openssl accepted a signature over different data")

    def test_every_scheme_signs_a_given_digest(self):
        data = open(self.message, "rb").read()
        for name, key_type in KEYS.items():
            for scheme in schemes_for(key_type):
                with self.subTest(key=name, scheme=scheme):
                    digest_name = SCHEMES[scheme][0]
                    digest = hashlib.new(digest_name, data).digest()
                    digest_file = self.tmp.write(f"{name}.{scheme}.digest", digest)
                    sig = self.tmp.join(f"{name}.{scheme}.dsig")
                    self.agent.cli("sign", name, "--scheme", scheme, "--digest", digest.hex(), "--out", sig)
                    ok = self.verify_digest(name, scheme, sig, digest_file)
                    self.assertEqual(ok.rc, 0, ok.describe())
                    self.assertIn("Signature Verified Successfully", ok.stdout)
                    # A signature of the digest is a signature of the file it came from.
                    self.assertEqual(self.verify_file(name, scheme, sig, self.message).rc, 0)

    def test_ecdsa_signatures_are_der(self):
        for name, scheme in (("sig-p256", "ecdsa_secp256r1_sha256"), ("sig-p384", "ecdsa_secp384r1_sha384")):
            with self.subTest(key=name):
                sig = self.tmp.join(f"{name}.der")
                self.agent.cli("sign", name, "--scheme", scheme, "--in", self.message, "--out", sig)
                parsed = openssl("asn1parse", "-inform", "DER", "-in", sig).stdout
                self.assertIn("SEQUENCE", parsed)
                self.assertEqual(parsed.count("INTEGER"), 2, parsed)
                raw = open(sig, "rb").read()
                self.assertEqual(raw[0], 0x30)
                self.assertEqual(raw[1] + 2, len(raw), "DER length does not cover the whole signature")

    def test_signature_goes_to_stdout_without_out(self):
        done = self.agent.cli("sign", "sig-rsa2048", "--scheme", "rsa_pkcs1_sha256", "--in", self.message)
        self.assertEqual(len(done.stdout_bytes), 256, "expected the raw 256-byte RSA-2048 signature on stdout")
        sig = self.tmp.write("stdout.sig", done.stdout_bytes)
        self.assertEqual(self.verify_file("sig-rsa2048", "rsa_pkcs1_sha256", sig, self.message).rc, 0)

    def test_rsa_pkcs1_signatures_are_deterministic(self):
        # PKCS#1 v1.5 has no randomness: two signatures of the same data must be identical
        # (proves the agent built the DigestInfo the same way each time, not a raw operation).
        a = self.agent.cli("sign", "sig-rsa2048", "--scheme", "rsa_pkcs1_sha384", "--in", self.message).stdout_bytes
        b = self.agent.cli("sign", "sig-rsa2048", "--scheme", "rsa_pkcs1_sha384", "--in", self.message).stdout_bytes
        self.assertEqual(a, b)

    def test_wrong_digest_length_is_a_clear_error(self):
        for name, scheme, size in (("sig-p256", "ecdsa_secp256r1_sha256", 32),
                                   ("sig-rsa2048", "rsa_pss_rsae_sha384", 48)):
            with self.subTest(scheme=scheme):
                done = self.agent.cli("sign", name, "--scheme", scheme, "--digest", "ab" * (size - 1),
                                      "--out", self.tmp.join("never.sig"), check=False)
                self.assertEqual(done.rc, 1, done.describe())
                self.assertIn(str(size), done.stderr, "the error should say which digest length is needed:\n" +
                              done.describe())
                self.assertIn("digest", done.stderr.lower(), done.describe())
        garbage = self.agent.cli("sign", "sig-p256", "--scheme", "ecdsa_secp256r1_sha256", "--digest", "xyz",
                                 check=False)
        self.assertIn(garbage.rc, (1, harness.EXIT_USAGE), garbage.describe())
        self.assertTrue(garbage.stderr.strip(), garbage.describe())

    def test_scheme_that_does_not_fit_the_key_is_refused(self):
        for name, scheme in (("sig-p256", "rsa_pss_rsae_sha256"), ("sig-p256", "ecdsa_secp384r1_sha384"),
                             ("sig-rsa2048", "ecdsa_secp256r1_sha256")):
            with self.subTest(key=name, scheme=scheme):
                done = self.agent.cli("sign", name, "--scheme", scheme, "--in", self.message,
                                      "--out", self.tmp.join("never.sig"), check=False)
                self.assertEqual(done.rc, 1, done.describe())
                self.assertIn(scheme, done.stderr, done.describe())

    def test_unknown_scheme_name_is_refused(self):
        done = self.agent.cli("sign", "sig-p256", "--scheme", "ecdsa_sha1", "--in", self.message, check=False)
        self.assertIn(done.rc, (1, harness.EXIT_USAGE), done.describe())
        self.assertIn("ecdsa_sha1", done.stderr, done.describe())

    def test_each_signature_is_counted(self):
        before = self.agent.signatures()
        self.agent.cli("sign", "sig-p256", "--scheme", "ecdsa_secp256r1_sha256", "--in", self.message)
        self.agent.cli("sign", "sig-rsa2048", "--scheme", "rsa_pss_rsae_sha256", "--in", self.message)
        self.assertEqual(self.agent.signatures(), before + 2)


if __name__ == "__main__":
    harness.main()
