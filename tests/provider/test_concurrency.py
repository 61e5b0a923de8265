#!/usr/bin/env python3
"""Many threads of one process handshaking at once with one agent-held key (8 threads,
one shared SSL_CTX), and fork(): children of a process that already talked to the agent
reconnect on their own while the parent's connection keeps working. Runs
tests/provider/tls_stress (a C++ client with an in-process TLS server), so the handshakes
and the agent signatures really overlap. Build with -Db_sanitize=address to run it under
ASan (see docs/openssl.md)."""

import os

import provider_helpers as ph
from provider_helpers import harness

THREADS, ROUNDS, CHILDREN = 8, 4, 3


def tls_stress():
    return harness.require_program(os.path.join(harness.bin_dir(), "tests", "provider", "tls_stress"))


class ConcurrencyTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.server_cert, cls.server_key = cls.ca.server_cert()
        cls.keys = [ph.ClientKey(cls.agent, cls.ca, cls.tmp, n, t)
                    for n, t in (("mt-p256", "ec-p256"), ("mt-rsa2048", "rsa-2048"))]
        cls.cnf = ph.write_openssl_cnf(cls.tmp, cls.agent.socket)

    def stress(self, mode, key, n):
        before = self.agent.signatures()
        done = harness.run([tls_stress(), mode, self.ca.cert, key.cert, key.keyref if mode == "threads" else key.uri,
                            self.server_cert, self.server_key, n, ROUNDS],
                           env={"OPENSSL_CONF": self.cnf, "KEYWARD_SOCKET": None}, check=False, timeout=300,
                           context=self.agent.log_tail)
        self.assertEqual(done.rc, 0, done.describe())
        return done, self.agent.signatures() - before

    def test_eight_threads_handshake_at_once(self):
        for key in self.keys:
            with self.subTest(key=key.key_type):
                done, signed = self.stress("threads", key, THREADS)
                self.assertIn(f"ok={THREADS * ROUNDS} failed=0", done.stdout)
                self.assertGreaterEqual(signed, THREADS * ROUNDS)

    def test_fork_children_reconnect_and_parent_survives(self):
        for key in self.keys:
            with self.subTest(key=key.key_type):
                done, signed = self.stress("fork", key, CHILDREN)
                self.assertIn("children_failed=0 parent_failed=0", done.stdout)
                # parent: 1 + ROUNDS + ROUNDS, every child: ROUNDS
                self.assertGreaterEqual(signed, 1 + 2 * ROUNDS + CHILDREN * ROUNDS)


if __name__ == "__main__":
    harness.main()
