#!/usr/bin/env python3
"""Python's ssl module: SSLContext.load_cert_chain(cert, KEYREF) with only OPENSSL_CONF
activating the provider, then TLS 1.3 and TLS 1.2 handshakes for EC P-256, EC P-384 and
RSA-2048 keys held by the agent."""

import provider_helpers as ph
from provider_helpers import harness

KEYS = [("py-p256", "ec-p256"), ("py-p384", "ec-p384"), ("py-rsa2048", "rsa-2048")]


class PythonSslTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.keys = [ph.ClientKey(cls.agent, cls.ca, cls.tmp, name, t) for name, t in KEYS]
        cls.cnf = ph.write_openssl_cnf(cls.tmp, cls.agent.socket)

    def test_load_cert_chain_with_key_reference(self):
        with ph.www_server(self.ca) as server:
            for key in self.keys:
                client = ph.LongLivedClient(self.ca.cert, key.cert, key.keyref,
                                            {"OPENSSL_CONF": self.cnf, "KEYWARD_SOCKET": None})
                try:
                    for version, expect in (("tls1_3", "TLSv1.3"), ("tls1_2", "TLSv1.2")):
                        with self.subTest(key=key.key_type, version=version):
                            before = self.agent.signatures()
                            self.assertEqual(client.connect(server.port, version), f"ok {expect} {key.name}")
                            self.assertGreater(self.agent.signatures(), before)
                finally:
                    self.assertEqual(client.close(), 0)

    def test_wrong_key_for_the_certificate_is_refused_at_load(self):
        # load_cert_chain checks that the key matches the certificate (our KEYMGMT match()).
        done = harness.run([harness.require_program("python3"), "-c",
                            "import ssl,sys; c=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); "
                            "c.load_cert_chain(sys.argv[1], sys.argv[2])", self.keys[0].cert, self.keys[1].keyref],
                           env={"OPENSSL_CONF": self.cnf}, check=False)
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertRegex(done.stderr, r"(?i)key values mismatch|KEY_VALUES_MISMATCH", done.describe())


if __name__ == "__main__":
    harness.main()
