#!/usr/bin/env python3
"""The keyward ENGINE with openssl s_client -engine keyward -keyform engine: TLS 1.3, and
TLS 1.2 with ECDSA, RSA-PSS and RSA PKCS#1 v1.5 (SHA-256 and SHA-384); the SOCKET command
from openssl.cnf; clear errors. Every handshake is proven by the server page and the
agent's signature counter. (curl: test_curl.py; nginx: test_nginx.py.)"""

import provider_helpers as ph
from provider_helpers import harness

KEYS = [("eng-p256", "ec-p256"), ("eng-p384", "ec-p384"), ("eng-rsa2048", "rsa-2048")]

CASES = [
    ("tls13", ["-tls1_3"], [], ("ec-p256", "ec-p384", "rsa-2048"), "TLSv1.3"),
    ("tls12", ["-tls1_2"], [], ("ec-p256", "ec-p384", "rsa-2048"), "TLSv1.2"),
    ("tls12-rsa-pss", ["-tls1_2"], ["-client_sigalgs", "rsa_pss_rsae_sha256"], ("rsa-2048",), "TLSv1.2"),
    ("tls12-rsa-pkcs1", ["-tls1_2"], ["-client_sigalgs", "RSA+SHA256"], ("rsa-2048",), "TLSv1.2"),
    ("tls12-rsa-pkcs1-sha384", ["-tls1_2"], ["-client_sigalgs", "RSA+SHA384"], ("rsa-2048",), "TLSv1.2"),
]


class EngineTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.keys = [ph.ClientKey(cls.agent, cls.ca, cls.tmp, name, t) for name, t in KEYS]

    def test_s_client_with_engine_keys(self):
        env = ph.engine_env(self.agent.socket)
        for key in self.keys:
            for label, client_extra, server_extra, types, protocol in CASES:
                if key.key_type not in types:
                    continue
                with self.subTest(key=key.key_type, case=label):
                    with ph.www_server(self.ca, server_extra) as server:
                        before = self.agent.signatures()
                        done = ph.s_client(server.port, self.ca.cert, key.cert, key.name,
                                           extra=["-engine", "keyward", "-keyform", "engine", *client_extra], env=env)
                        ph.assert_handshake_used_agent(self, self.agent, before, done, key.name, protocol)

    def test_engine_socket_from_openssl_cnf(self):
        cnf = ph.write_engine_cnf(self.tmp, self.agent.socket)
        key = self.keys[0]
        with ph.www_server(self.ca) as server:
            before = self.agent.signatures()
            done = ph.s_client(server.port, self.ca.cert, key.cert, key.name,
                               extra=["-engine", "keyward", "-keyform", "engine"],
                               env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": "/nonexistent/agent.sock",
                                    "OPENSSL_ENGINES": None})
            ph.assert_handshake_used_agent(self, self.agent, before, done, key.name, None)

    def test_engine_errors_are_clear(self):
        env = ph.engine_env(self.agent.socket)
        msg = self.tmp.write("m.txt", "x")
        done = harness.run([harness.require_program("openssl"), "dgst", "-sha256", "-engine", "keyward", "-keyform",
                            "engine", "-sign", "no-such-key", msg], env=env, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("keyward engine: no such key no-such-key", done.stderr, done.describe())
        env["KEYWARD_SOCKET"] = self.tmp.join("nowhere.sock")
        done = harness.run([harness.require_program("openssl"), "dgst", "-sha256", "-engine", "keyward", "-keyform",
                            "engine", "-sign", self.keys[0].name, msg], env=env, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn(f"keyward engine: agent not reachable at {env['KEYWARD_SOCKET']}", done.stderr, done.describe())


if __name__ == "__main__":
    harness.main()
