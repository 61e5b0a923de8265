"""The harness's own peers work: the software CA issues usable certificates and s_server
really demands a client certificate (so later tests that pass through it prove something)."""

import socket
import unittest

import harness
from harness import SServer, TempDir, TestCA, openssl, require_program


class TestCAAndSServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_program("openssl")
        cls.tmp = TempDir("keyward-harness-")
        cls.ca = TestCA(cls.tmp.join("ca"))
        cls.server_cert, cls.server_key = cls.ca.server_cert()
        cls.client_cert, cls.client_key = cls.ca.software_client("alice")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def s_client(self, port, *extra):
        return openssl("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", self.ca.cert,
                       "-verify_return_error", "-brief", *extra, input=b"ping\n", check=False, timeout=30)

    def test_issued_certificates_verify_for_their_purpose(self):
        openssl("verify", "-CAfile", self.ca.cert, "-purpose", "sslclient", self.client_cert)
        openssl("verify", "-CAfile", self.ca.cert, "-purpose", "sslserver", self.server_cert)
        text = openssl("x509", "-in", self.client_cert, "-noout", "-text").stdout
        self.assertIn("TLS Web Client Authentication", text)
        self.assertNotIn("TLS Web Server Authentication", text)

    def test_sserver_accepts_a_client_certificate_from_the_ca(self):
        for version in ("-tls1_2", "-tls1_3"):
            with SServer(self.server_cert, self.server_key, self.ca.cert) as server:
                done = self.s_client(server.port, version, "-cert", self.client_cert, "-key", self.client_key)
                self.assertEqual(done.rc, 0, done.describe() + "\n--- s_server ---\n" + server.output())
                self.assertTrue(server.wait_for(r"CN ?= ?alice"),
                                "s_server did not report the client certificate:\n" + server.output())

    def test_sserver_refuses_a_client_without_certificate(self):
        with SServer(self.server_cert, self.server_key, self.ca.cert, extra_args=["-tls1_2"]) as server:
            done = self.s_client(server.port)
            self.assertNotEqual(done.rc, 0, "s_server let a client without a certificate in:\n" + done.describe())

    def test_sserver_refuses_a_certificate_from_another_ca(self):
        other = TestCA(self.tmp.join("other-ca"), subject="/CN=some other CA")
        cert, key = other.software_client("mallory")
        with SServer(self.server_cert, self.server_key, self.ca.cert, extra_args=["-tls1_2"]) as server:
            done = self.s_client(server.port, "-cert", cert, "-key", key)
            self.assertNotEqual(done.rc, 0, "s_server accepted a foreign client certificate:\n" + done.describe())

    def test_free_port_is_bindable(self):
        port = harness.free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    harness.main()
