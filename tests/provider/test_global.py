#!/usr/bin/env python3
"""The provider active globally (OPENSSL_CONF, for server and client alike) must not
change anything that is not an agent key: PEM-file client keys, ECDSA and RSA server
certificate chains, TLS 1.2 with ECDHE on P-256 (which Debian's TPM provider breaks), in
both provider orders in openssl.cnf. The agent's signature counter must not move."""

import os

import provider_helpers as ph
from provider_helpers import harness


def software_key(path, kind):
    if kind == "rsa":
        harness.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        harness.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return path


class GlobalProviderTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        d = cls.ca.dir
        # An RSA server certificate behind an intermediate CA: a chain, with RSA keys.
        inter_key = software_key(os.path.join(d, "inter.key"), "rsa")
        inter_csr = os.path.join(d, "inter.csr")
        harness.openssl("req", "-new", "-key", inter_key, "-subj", "/CN=intermediate", "-out", inter_csr)
        cls.inter = os.path.join(d, "inter.crt")
        ext = cls.tmp.write("inter.ext", "[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n")
        harness.openssl("x509", "-req", "-in", inter_csr, "-CA", cls.ca.cert, "-CAkey", cls.ca.key, "-set_serial",
                        "5001", "-days", "2", "-extfile", ext, "-extensions", "v3", "-out", cls.inter)
        cls.rsa_server_key = software_key(os.path.join(d, "rsa-server.key"), "rsa")
        csr = os.path.join(d, "rsa-server.csr")
        harness.openssl("req", "-new", "-key", cls.rsa_server_key, "-subj", "/CN=localhost", "-out", csr)
        cls.rsa_server_cert = os.path.join(d, "rsa-server.crt")
        ext = cls.tmp.write("server.ext", "[v3]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                          "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        harness.openssl("x509", "-req", "-in", csr, "-CA", cls.inter, "-CAkey", inter_key, "-set_serial", "5002",
                        "-days", "2", "-extfile", ext, "-extensions", "v3", "-out", cls.rsa_server_cert)
        cls.clients = {k: cls.ca.software_client(f"file-{k}") for k in ("ec",)}
        rsa_key = software_key(os.path.join(d, "file-rsa.key"), "rsa")
        rsa_csr = os.path.join(d, "file-rsa.csr")
        harness.openssl("req", "-new", "-key", rsa_key, "-subj", "/CN=file-rsa", "-out", rsa_csr)
        cls.clients["rsa"] = (cls.ca.issue_client_cert(rsa_csr), rsa_key)

    def setUp(self):
        self.saved_conf = os.environ.get("OPENSSL_CONF")

    def tearDown(self):
        if self.saved_conf is None:
            os.environ.pop("OPENSSL_CONF", None)
        else:
            os.environ["OPENSSL_CONF"] = self.saved_conf

    def handshakes(self, cnf):
        os.environ["OPENSSL_CONF"] = cnf  # inherited by s_server and s_client alike
        before = self.agent.signatures()
        ec_server = ph.www_server(self.ca)
        rsa_server = harness.SServer(self.rsa_server_cert, self.rsa_server_key, self.ca.cert,
                                     extra_args=["-www", "-cert_chain", self.inter])
        cases = [
            ("tls12-ecdhe-p256", ["-tls1_2", "-groups", "P-256", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "ec"),
            ("tls13-p256", ["-tls1_3", "-groups", "P-256"], "ec"),
            ("tls13-default-groups", ["-tls1_3"], "ec"),
            ("tls12-rsa-server", ["-tls1_2", "-groups", "P-256", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "rsa"),
            ("tls13-rsa-server", ["-tls1_3"], "rsa"),
        ]
        with ec_server, rsa_server:
            for label, extra, server_kind in cases:
                server = ec_server if server_kind == "ec" else rsa_server
                for client_kind, (cert, key) in self.clients.items():
                    with self.subTest(case=label, client=client_kind, conf=os.path.basename(cnf)):
                        done = ph.s_client(server.port, self.ca.cert, cert, key, extra=extra)
                        self.assertEqual(done.rc, 0, done.describe())
                        self.assertIn(f"Subject: CN=file-{client_kind}", done.stdout, done.describe())
                        if "ECDHE" in " ".join(extra):
                            self.assertIn("ECDHE", done.stdout)
        self.assertEqual(self.agent.signatures(), before, "a file key's handshake went to the agent")

    def test_default_then_keyward(self):
        self.handshakes(ph.write_openssl_cnf(self.tmp, self.agent.socket, name="default-first.cnf"))

    def test_keyward_then_default(self):
        self.handshakes(ph.write_openssl_cnf(self.tmp, self.agent.socket, name="keyward-first.cnf",
                                             keyward_first=True))

    def test_file_keys_load_and_sign_under_the_provider(self):
        os.environ["OPENSSL_CONF"] = ph.write_openssl_cnf(self.tmp, self.agent.socket, name="tools.cnf")
        cert, key = self.clients["ec"]
        msg = self.tmp.write("m.txt", "x")
        sig = self.tmp.join("m.sig")
        harness.openssl("dgst", "-sha256", "-sign", key, "-out", sig, msg)
        pub = harness.openssl("pkey", "-in", key, "-pubout").stdout
        pubfile = self.tmp.write("file.pub", pub)
        harness.openssl("dgst", "-sha256", "-verify", pubfile, "-signature", sig, msg)
        harness.openssl("req", "-new", "-key", key, "-subj", "/CN=x", "-out", self.tmp.join("x.csr"))
        harness.openssl("verify", "-CAfile", self.ca.cert, cert)
        # A private key file is still written as one (our encoders only do public keys).
        out = harness.openssl("pkey", "-in", key).stdout
        self.assertIn("-----BEGIN PRIVATE KEY-----", out)


if __name__ == "__main__":
    harness.main()
