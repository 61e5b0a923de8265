#!/usr/bin/env python3
"""The keyward ENGINE: openssl s_client -engine keyward -keyform engine (TLS 1.3, TLS 1.2
with ECDSA, RSA-PSS and RSA PKCS#1 v1.5), curl 7.88 --engine keyward --key-type ENG, and
curl --key FILE.keyref with OPENSSL_CONF activating the provider. Every handshake is
proven by the server page and the agent's signature counter."""

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

    def curl(self, port, key, extra, env):
        argv = [harness.require_program("curl"), "-sS", "--fail", "--cacert", self.ca.cert, "--cert", key.cert,
                "--resolve", f"localhost:{port}:127.0.0.1", *extra, f"https://localhost:{port}/"]
        return harness.run(argv, env=env, check=False, timeout=60)

    def test_curl_engine(self):
        for key in self.keys:
            for version in ("--tlsv1.3", "--tls-max"):
                with self.subTest(key=key.key_type, version=version):
                    tls = ["--tlsv1.3"] if version == "--tlsv1.3" else ["--tlsv1.2", "--tls-max", "1.2"]
                    with ph.www_server(self.ca) as server:
                        before = self.agent.signatures()
                        done = self.curl(server.port, key, ["--engine", "keyward", "--key-type", "ENG",
                                                            "--key", key.name, *tls],
                                         ph.engine_env(self.agent.socket))
                        ph.assert_handshake_used_agent(self, self.agent, before, done, key.name,
                                                       "TLSv1.3" if version == "--tlsv1.3" else "TLSv1.2")

    def test_curl_key_reference_with_openssl_conf(self):
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket)
        for key in self.keys:
            with self.subTest(key=key.key_type):
                with ph.www_server(self.ca) as server:
                    before = self.agent.signatures()
                    done = self.curl(server.port, key, ["--key", key.keyref],
                                     {"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
                    ph.assert_handshake_used_agent(self, self.agent, before, done, key.name, None)


if __name__ == "__main__":
    harness.main()
