#!/usr/bin/env python3
"""keyward-pkcs11.so under the conditions real consumers create: NSS (modutil -add into a
fresh database, certutil sees the token's certificates), 8 threads × 1,000 signatures
through one loaded module, fork() in a consumer, the agent restarting under a running
consumer, and keys appearing and disappearing between searches."""

import re
import subprocess
import time
import unittest

from p11env import P11Env, consumer_path
from harness import require_program, run
import harness

CKR_DEVICE_REMOVED = 0x32


class ConsumersCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = P11Env("consumers")

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def consumer(self, *args, check=True, timeout=300):
        return run([consumer_path(), self.env.module, *args], env=self.env.client_env(), check=check,
                   timeout=timeout, context=self.env.agent.log_tail)

    def tool(self, *args):
        return run([require_program("pkcs11-tool"), "--module", self.env.module, *args], env=self.env.client_env(),
                   context=self.env.agent.log_tail)

    def test_nss_database_sees_token_and_certificates(self):
        db = self.env.tmp.mkdir("nssdb")
        certutil, modutil = require_program("certutil"), require_program("modutil")
        run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"])
        run([modutil, "-dbdir", f"sql:{db}", "-add", "keyward", "-libfile", self.env.module, "-force"],
            env=self.env.client_env())
        listed = run([modutil, "-dbdir", f"sql:{db}", "-list", "keyward"], env=self.env.client_env()).stdout
        self.assertRegex(listed, r"Token Name\s*:\s*keyward", listed)
        certs = run([certutil, "-L", "-d", f"sql:{db}", "-h", "keyward"], env=self.env.client_env()).stdout
        self.assertIn("keyward:p11-ec", certs)
        self.assertIn("keyward:p11-rsa", certs)
        # NSS pairs each certificate with its private key (same CKA_ID): "certutil -K" lists keys.
        keys = run([certutil, "-K", "-d", f"sql:{db}", "-h", "keyward"], env=self.env.client_env(),
                   input="\n").stdout
        self.assertRegex(keys, r"<\s*\d+> ec\s+[0-9a-f]{40}\s+p11-ec\n", keys)
        self.assertRegex(keys, r"<\s*\d+> rsa\s+[0-9a-f]{40}\s+p11-rsa\n", keys)

    def test_eight_threads_thousand_signatures_each(self):
        for key in ("p11-ec", "p11-rsa"):
            with self.subTest(key=key):
                count = 1000 if key == "p11-ec" else 150
                before = self.env.agent.signatures()
                done = self.consumer(key, "threads", "8", str(count))
                self.assertIn(f"verified={8 * count} failed=0", done.stdout, done.describe())
                self.assertGreaterEqual(self.env.agent.signatures() - before, 8 * count)
                print(f"[{key}] {done.stdout.strip()}")

    def test_pkcs11_conventions(self):
        for key in ("p11-ec", "p11-rsa"):
            with self.subTest(key=key):
                done = self.consumer(key, "semantics")
                self.assertIn("semantics: 0 failures", done.stdout, done.describe())

    def test_fork_in_a_consumer(self):
        done = self.consumer("p11-ec", "fork")
        self.assertIn("fork: parent ok, child ok", done.stdout, done.describe())

    def test_agent_restart_under_a_running_consumer(self):
        proc = subprocess.Popen([consumer_path(), self.env.module, "p11-ec", "loop", "8"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**__import__("os").environ, **self.env.client_env()})
        try:
            time.sleep(1.5)
            self.env.agent.stop()
            time.sleep(1.5)
            self.env.agent.start()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = out.decode()
        results = [int(x, 16) for x in re.findall(r"rv=0x([0-9a-f]+)", out)]
        # Signing, then the device gone, then signing again in the same session.
        self.assertEqual(results, [0, CKR_DEVICE_REMOVED, 0], out + err.decode())
        self.assertEqual(proc.returncode, 0, out + err.decode())

    def test_token_not_present_while_agent_is_down(self):
        self.env.agent.stop()
        try:
            out = self.tool("-L").stdout
            self.assertIn("keyward agent at", out, "the slot stays listed")
            self.assertIn("(empty)", out, "without its token")
        finally:
            self.env.agent.start()
        self.assertIn("token label", self.tool("-L").stdout)

    def test_renewed_certificate_replaces_the_old_one(self):
        def token_cert():
            return run([require_program("pkcs11-tool"), "--module", self.env.module, "--read-object", "--type",
                        "cert", "--label", "p11-rsa"], env=self.env.client_env()).stdout_bytes

        def store_cert():
            with open(self.env.cert_path("p11-rsa")) as f:
                return run(["openssl", "x509", "-outform", "DER"], input=f.read()).stdout_bytes

        before = token_cert()
        self.assertEqual(before, store_cert())
        self.env.agent.cli("renew", "p11-rsa", "--now", timeout=300)
        after = token_cert()
        self.assertNotEqual(after, before, "the renewal's certificate is on the token")
        self.assertEqual(after, store_cert())

    def test_keys_appear_and_disappear_between_searches(self):
        self.assertNotIn("p11-new", self.tool("-O").stdout)
        self.env.agent.create_key("p11-new", "ec-p256")
        listed = self.tool("-O", "--type", "privkey").stdout
        self.assertIn("label:      p11-new", listed)
        done = self.consumer("p11-new", "threads", "1", "5")
        self.assertIn("verified=5 failed=0", done.stdout)
        self.env.agent.cli("keys", "delete", "p11-new")
        self.assertNotIn("p11-new", self.tool("-O").stdout)
        done = self.consumer("p11-new", "threads", "1", "1", check=False)
        self.assertNotEqual(done.rc, 0, "a deleted key is not found")


if __name__ == "__main__":
    harness.main()
