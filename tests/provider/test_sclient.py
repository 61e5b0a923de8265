#!/usr/bin/env python3
"""openssl s_client with agent-held client keys through the keyward provider:
EC P-256, EC P-384 and RSA-2048, TLS 1.3 and TLS 1.2 (ECDSA, RSA-PSS, RSA PKCS#1 v1.5),
once with `-provider keyward -provider default -key keyward:NAME` and once with the
key-reference file and OPENSSL_CONF activating the provider. Every handshake is proven
by the server page naming our certificate and by the agent's signature counter."""

import provider_helpers as ph
from provider_helpers import harness

KEYS = [("p256", "ec-p256"), ("p384", "ec-p384"), ("rsa2048", "rsa-2048")]

# (label, s_client options, s_server options, key types it applies to, expected protocol)
CASES = [
    ("tls13", ["-tls1_3"], [], ("ec-p256", "ec-p384", "rsa-2048"), "TLSv1.3"),
    ("tls12", ["-tls1_2"], [], ("ec-p256", "ec-p384", "rsa-2048"), "TLSv1.2"),
    ("tls12-rsa-pss", ["-tls1_2"], ["-client_sigalgs", "rsa_pss_rsae_sha256"], ("rsa-2048",), "TLSv1.2"),
    ("tls12-rsa-pkcs1", ["-tls1_2"], ["-client_sigalgs", "RSA+SHA256"], ("rsa-2048",), "TLSv1.2"),
    ("tls13-rsa-pss-sha384", ["-tls1_3"], ["-client_sigalgs", "rsa_pss_rsae_sha384"], ("rsa-2048",), "TLSv1.3"),
]


class SClientTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.keys = [ph.ClientKey(cls.agent, cls.ca, cls.tmp, name, t) for name, t in KEYS]
        cls.cnf = ph.write_openssl_cnf(cls.tmp, cls.agent.socket)

    def handshake(self, key, client_extra, server_extra, protocol, mode):
        with ph.www_server(self.ca, server_extra) as server:
            before = self.agent.signatures()
            if mode == "uri":
                result = ph.s_client(server.port, self.ca.cert, key.cert, key.uri,
                                     extra=[*ph.provider_args(), *client_extra],
                                     env={"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None})
            else:
                result = ph.s_client(server.port, self.ca.cert, key.cert, key.keyref, extra=client_extra,
                                     env={"OPENSSL_CONF": self.cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, key.name, protocol)

    def run_cases(self, mode):
        for key in self.keys:
            for label, client_extra, server_extra, types, protocol in CASES:
                if key.key_type not in types:
                    continue
                with self.subTest(key=key.key_type, case=label, mode=mode):
                    self.handshake(key, client_extra, server_extra, protocol, mode)

    def test_uri_with_provider_options(self):
        """-provider keyward -provider default -key keyward:NAME, socket from KEYWARD_SOCKET."""
        self.run_cases("uri")

    def test_keyref_with_openssl_conf(self):
        """-key FILE.keyref, the provider activated (with its socket) by OPENSSL_CONF only."""
        self.run_cases("keyref")

    def test_keyref_with_keyward_first_in_openssl_conf(self):
        """keyward listed before default in openssl.cnf: TLS 1.2 ECDHE must still work."""
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket, name="keyward-first.cnf", keyward_first=True)
        key = self.keys[0]
        with ph.www_server(self.ca) as server:
            before = self.agent.signatures()
            result = ph.s_client(server.port, self.ca.cert, key.cert, key.keyref, extra=["-tls1_2"],
                                 env={"OPENSSL_CONF": cnf, "KEYWARD_SOCKET": None})
            ph.assert_handshake_used_agent(self, self.agent, before, result, key.name, "TLSv1.2")
            self.assertIn("ECDHE-ECDSA", result.stdout)


if __name__ == "__main__":
    harness.main()
