#!/usr/bin/env python3
"""curl 7.88 with agent-held client keys: --engine keyward --key-type ENG --key NAME (the
engine, found by id through OPENSSL_ENGINES), and --key FILE.keyref with OPENSSL_CONF
activating the provider; EC P-256, EC P-384, RSA-2048; TLS 1.3 and TLS 1.2. Every request
is proven by the server page naming our certificate and the agent's signature counter."""

import provider_helpers as ph
from provider_helpers import harness

KEYS = [("curl-p256", "ec-p256"), ("curl-p384", "ec-p384"), ("curl-rsa2048", "rsa-2048")]
VERSIONS = [("TLSv1.3", ["--tlsv1.3"]), ("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"])]


class CurlTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.require_program("curl")
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.keys = [ph.ClientKey(cls.agent, cls.ca, cls.tmp, name, t) for name, t in KEYS]

    def curl(self, port, key, extra, env):
        argv = [harness.require_program("curl"), "-sS", "--fail", "--cacert", self.ca.cert, "--cert", key.cert,
                "--resolve", f"localhost:{port}:127.0.0.1", *extra, f"https://localhost:{port}/"]
        return harness.run(argv, env=env, check=False, timeout=60)

    def test_curl_engine(self):
        for key in self.keys:
            for protocol, tls in VERSIONS:
                with self.subTest(key=key.key_type, protocol=protocol):
                    with ph.www_server(self.ca) as server:
                        before = self.agent.signatures()
                        done = self.curl(server.port, key, ["--engine", "keyward", "--key-type", "ENG",
                                                            "--key", key.name, *tls],
                                         ph.engine_env(self.agent.socket))
                        ph.assert_handshake_used_agent(self, self.agent, before, done, key.name, protocol)

    def test_curl_key_reference_with_openssl_conf(self):
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket)
        for key in self.keys:
            for protocol, tls in VERSIONS:
                with self.subTest(key=key.key_type, protocol=protocol):
                    with ph.www_server(self.ca) as server:
                        before = self.agent.signatures()
                        done = self.curl(server.port, key, ["--key", key.keyref, *tls],
                                         {"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
                        ph.assert_handshake_used_agent(self, self.agent, before, done, key.name, protocol)

    def test_key_reference_without_the_provider_is_not_a_key(self):
        key = self.keys[0]
        with ph.www_server(self.ca) as server:
            done = self.curl(server.port, key, ["--key", key.keyref], {"OPENSSL_CONF": None, "KEYWARD_SOCKET": None})
            self.assertNotEqual(done.rc, 0, done.describe())
            self.assertIn("unable to set private key file", done.stderr)



if __name__ == "__main__":
    harness.main()
