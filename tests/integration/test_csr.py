"""`keyward csr` makes PKCS#10 requests signed by the device key (through the agent) that
OpenSSL verifies, with the asked subject, SANs and the clientAuth extended key usage."""

import harness
from harness import EXIT_NO_SUCH_KEY, AgentTestCase, TestCA, openssl

KEYS = {"csr-p256": "ec-p256", "csr-p384": "ec-p384", "csr-rsa": "rsa-2048"}
SANS = ["dns:client.example", "ip:127.0.0.1", "email:ops@example.org", "uri:spiffe://example.org/client"]
SANS_AS_PRINTED = ["DNS:client.example", "IP Address:127.0.0.1", "email:ops@example.org",
                   "URI:spiffe://example.org/client"]


class TestCsr(AgentTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, key_type in KEYS.items():
            cls.agent.create_key(name, key_type)
        cls.ca = TestCA(cls.tmp.join("ca"))

    def make_csr(self, name, *extra):
        out = self.tmp.join(f"{name}.csr")
        san_args = [a for san in SANS for a in ("--san", san)]
        self.agent.cli("csr", name, "--subject", f"/CN={name}/O=keyward tests", *san_args, *extra, "--out", out)
        return out

    def test_csr_verifies_and_carries_subject_sans_and_client_auth(self):
        for name, key_type in KEYS.items():
            with self.subTest(key=name):
                before = self.agent.signatures()
                csr = self.make_csr(name)
                self.assertEqual(self.agent.signatures(), before + 1, "the CSR was not signed through the agent")
                verified = openssl("req", "-in", csr, "-verify", "-noout", check=False)
                self.assertEqual(verified.rc, 0, verified.describe())
                self.assertIn("verify OK", verified.stdout + verified.stderr)

                text = openssl("req", "-in", csr, "-noout", "-text").stdout
                self.assertIn(f"CN = {name}", text)
                self.assertIn("O = keyward tests", text)
                for san in SANS_AS_PRINTED:
                    self.assertIn(san, text, text)
                self.assertIn("TLS Web Client Authentication", text, text)
                algorithm = "ecdsa-with-" if key_type.startswith("ec-") else "RSA"
                self.assertRegex(text, rf"Signature Algorithm: \S*{algorithm}", text)

    def test_csr_holds_the_device_public_key(self):
        for name in KEYS:
            with self.subTest(key=name):
                csr = self.make_csr(name)
                in_csr = openssl("req", "-in", csr, "-noout", "-pubkey").stdout
                pem = self.tmp.write(f"{name}.csr-pub.pem", in_csr)
                ours = self.tmp.join(f"{name}.pub.pem")
                self.agent.pubkey(name, ours)
                der = lambda p: openssl("pkey", "-pubin", "-in", p, "-outform", "DER").stdout_bytes  # noqa: E731
                self.assertEqual(der(pem), der(ours))

    def test_ca_issues_a_client_certificate_from_the_csr(self):
        cert = self.agent.issue_client_cert(self.ca, "csr-p256", self.tmp.join("client.crt"),
                                            subject="/CN=client.example", sans=["dns:client.example"])
        done = openssl("verify", "-CAfile", self.ca.cert, "-purpose", "sslclient", cert)
        self.assertIn("OK", done.stdout)
        # The certificate certifies the device key.
        in_cert = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
        self.assertEqual(in_cert.strip(), self.agent.pubkey("csr-p256").strip())

    def test_csr_on_stdout_without_out(self):
        done = self.agent.cli("csr", "csr-p256", "--subject", "/CN=stdout")
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", done.stdout)
        csr = self.tmp.write("stdout.csr", done.stdout)
        self.assertEqual(openssl("req", "-in", csr, "-verify", "-noout", check=False).rc, 0)

    def test_csr_without_sans(self):
        out = self.tmp.join("plain.csr")
        self.agent.cli("csr", "csr-rsa", "--subject", "/CN=plain", "--out", out)
        self.assertEqual(openssl("req", "-in", out, "-verify", "-noout", check=False).rc, 0)
        self.assertIn("TLS Web Client Authentication", openssl("req", "-in", out, "-noout", "-text").stdout)

    def test_csr_for_unknown_key_exits_5(self):
        done = self.agent.cli("csr", "no-such-key", "--subject", "/CN=x", check=False)
        self.assertEqual(done.rc, EXIT_NO_SUCH_KEY, done.describe())

    def test_bad_san_is_refused(self):
        done = self.agent.cli("csr", "csr-p256", "--subject", "/CN=x", "--san", "carrier-pigeon:42",
                              "--out", self.tmp.join("never.csr"), check=False)
        self.assertIn(done.rc, (1, harness.EXIT_USAGE), done.describe())
        self.assertIn("carrier-pigeon", done.stderr, done.describe())


if __name__ == "__main__":
    harness.main()
