#!/usr/bin/env python3
"""Failure behaviour of the provider inside other people's programs: a stopped agent gives
a fast, clear error (no crash, no hang); a long-lived process recovers by itself once the
agent is back; a key the caller may not use is refused with a message that says so."""

import os
import shutil
import signal
import time

import provider_helpers as ph
from provider_helpers import harness

FAST = 10  # seconds: "fails fast" (the client's own timeout is 30 s)


class AgentDownTest(harness.AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.key = ph.ClientKey(cls.agent, cls.ca, cls.tmp, "client", "ec-p256")
        cls.cnf = ph.write_openssl_cnf(cls.tmp, cls.agent.socket)

    def setUp(self):
        if not self.agent.alive():
            self.agent.start()

    def assert_clear_unreachable(self, done, started):
        elapsed = time.monotonic() - started
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertLess(done.rc, 128, "killed by a signal:\n" + done.describe())
        self.assertLess(elapsed, FAST, f"took {elapsed:.1f}s to fail")
        self.assertIn(f"keyward: agent not reachable at {self.agent.socket}", done.stderr, done.describe())

    def test_stopped_agent_fails_fast_with_a_clear_error(self):
        self.agent.stop()
        with ph.www_server(self.ca) as server:
            started = time.monotonic()
            done = ph.s_client(server.port, self.ca.cert, self.key.cert, self.key.uri, extra=ph.provider_args(),
                               env={"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None}, timeout=60)
            self.assert_clear_unreachable(done, started)
            self.assertIn("loading the key", done.stderr)

            # The key-reference file decodes without the agent; the handshake's signature fails.
            started = time.monotonic()
            done = ph.s_client(server.port, self.ca.cert, self.key.cert, self.key.keyref,
                               env={"OPENSSL_CONF": self.cnf, "KEYWARD_SOCKET": None}, timeout=60)
            self.assert_clear_unreachable(done, started)
            self.assertIn("signing", done.stderr)

    def test_long_lived_process_recovers_after_agent_restart(self):
        client = ph.LongLivedClient(self.ca.cert, self.key.cert, self.key.keyref,
                                 {"OPENSSL_CONF": self.cnf, "KEYWARD_SOCKET": None})
        try:
            with ph.www_server(self.ca) as server:
                before = self.agent.signatures()
                self.assertEqual(client.connect(server.port), f"ok TLSv1.3 {self.key.name}")
                self.assertGreater(self.agent.signatures(), before)

                self.agent.stop()
                started = time.monotonic()
                answer = client.connect(server.port)
                self.assertTrue(answer.startswith("error"), answer)
                self.assertLess(time.monotonic() - started, FAST)

                self.agent.start()
                before = self.agent.signatures()
                for version in ("tls1_3", "tls1_2"):
                    self.assertEqual(client.connect(server.port, version),
                                     f"ok {'TLSv1.3' if version == 'tls1_3' else 'TLSv1.2'} {self.key.name}")
                self.assertGreaterEqual(self.agent.signatures(), before + 2)
        finally:
            self.assertEqual(client.close(), 0)


class DeniedKeyTest(harness.AgentTestCase):
    """Socket open to everyone (0666), key policy: root only. uid 65534 is refused."""

    @classmethod
    def make_agent(cls):
        harness.require_program("setpriv")
        cls.public = cls.tmp.public_dir("public")
        return harness.Agent(cls.tmp, socket=os.path.join(cls.public, "agent.sock"), socket_mode=0o666)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key("root-only", "ec-p256")
        cls.keyref = os.path.join(cls.public, "root-only.keyref")
        cls.agent.cli("keys", "ref", "root-only", "--out", cls.keyref)
        os.chmod(cls.keyref, 0o644)
        cls.message = cls.tmp.write("public/message.txt", "hello\n", mode=0o644)
        # A copy other uids can load: the build tree may sit in a directory only root can
        # enter (a clone under mktemp -d).
        cls.provider_path = cls.tmp.public_dir("public/provider", 0o755)
        shutil.copy2(ph.provider_module(), os.path.join(cls.provider_path, "keyward.so"))
        os.chmod(os.path.join(cls.provider_path, "keyward.so"), 0o755)

    def run_as_nobody(self, *args):
        return harness.run([harness.require_program("openssl"), *args], user=harness.NOBODY_UID, check=False,
                           env={"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None, "HOME": self.public},
                           cwd=self.public)

    def test_uri_load_is_denied_clearly(self):
        done = self.run_as_nobody("pkey", *ph.provider_args(self.provider_path), "-in", "keyward:root-only", "-pubout")
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn("keyward: access to key root-only denied", done.stderr, done.describe())

    def test_keyref_signing_is_denied_clearly(self):
        before = self.agent.signatures()
        done = self.run_as_nobody("dgst", *ph.provider_args(self.provider_path), "-sha256", "-sign", self.keyref,
                                  "-out", os.path.join(self.public, "sig.bin"), self.message)
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn("keyward: access to key root-only denied", done.stderr, done.describe())
        self.assertEqual(self.agent.signatures(), before)
        self.assertAgentAlive()


class StaleReferenceTest(harness.AgentTestCase):
    """A key-reference file names a key; if that key was deleted and a new one made under the
    same name, the provider refuses to sign with it (the server would only say "bad
    signature") and says why. A reference to the same key still signs."""

    def test_recreated_key_is_refused_with_the_cause(self):
        self.agent.create_key("d1", "ec-p256")
        ref = self.tmp.join("d1.keyref")
        self.agent.cli("keys", "ref", "d1", "--out", ref)
        message = self.tmp.write("message.txt", "hello\n")
        env = {"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None}
        sign = [harness.require_program("openssl"), "dgst", *ph.provider_args(), "-sha256", "-sign", ref,
                "-out", self.tmp.join("d1.sig"), message]
        done = harness.run(sign, env=env, check=False)
        self.assertEqual(done.rc, 0, done.describe())

        self.agent.cli("keys", "delete", "d1")
        self.agent.create_key("d1", "ec-p256")
        before = self.agent.signatures()
        done = harness.run(sign, env=env, check=False)
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn("the key 'd1' in the agent is not the key this reference was made for (deleted and re-created?)",
                      done.stderr, done.describe())
        self.assertEqual(self.agent.signatures(), before, "the agent signed with the new key")

        fresh = self.tmp.join("d1-new.keyref")
        self.agent.cli("keys", "ref", "d1", "--out", fresh)
        done = harness.run([*sign[:sign.index(ref)], fresh, *sign[sign.index(ref) + 1:]], env=env, check=False)
        self.assertEqual(done.rc, 0, done.describe())


class HungAgentTest(harness.AgentTestCase):
    """An agent that accepts connections but never answers (SIGSTOP): a new caller gives up
    after the short connect/HELLO timeout (5 s), or after the timeout it was given
    (KEYWARD_TIMEOUT, or `timeout` in the provider's openssl.cnf section) — not after 30 s."""

    def hung_sign(self, env):
        ref = self.tmp.join("hung.keyref")
        if not os.path.exists(ref):
            self.agent.create_key("hung", "ec-p256")
            self.agent.cli("keys", "ref", "hung", "--out", ref)
        message = self.tmp.write("message.txt", "hello\n")
        self.agent.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            done = harness.run([harness.require_program("openssl"), "dgst", *env.pop("args"), "-sha256", "-sign", ref,
                                "-out", self.tmp.join("hung.sig"), message],
                               env={"KEYWARD_SOCKET": self.agent.socket, **env}, check=False, timeout=60)
            return done, time.monotonic() - started
        finally:
            self.agent.signal(signal.SIGCONT)

    def test_default_gives_up_after_the_connect_timeout(self):
        done, took = self.hung_sign({"args": ph.provider_args(), "OPENSSL_CONF": None, "KEYWARD_TIMEOUT": None})
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertGreater(took, 4)
        self.assertLess(took, 12, done.describe())

    def test_keyward_timeout_bounds_the_wait(self):
        done, took = self.hung_sign({"args": ph.provider_args(), "OPENSSL_CONF": None, "KEYWARD_TIMEOUT": "1.5"})
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertLess(took, 4, done.describe())
        self.assertIn("keyward", done.stderr)

    def test_openssl_cnf_timeout_bounds_the_wait(self):
        cnf = ph.write_openssl_cnf(self.tmp, self.agent.socket, name="timeout.cnf", timeout="1")
        done, took = self.hung_sign({"args": [], "OPENSSL_CONF": cnf, "KEYWARD_TIMEOUT": None})
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertLess(took, 4, done.describe())


if __name__ == "__main__":
    harness.main()
