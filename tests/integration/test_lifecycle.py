"""keywardd's life: SIGTERM stops it cleanly (exit 0, socket gone), a restart on the same state
directory finds the same keys on the persistent token, the embedded token's PINs sit in
0600 files and never show up in logs, argv or the environment."""

import os
import signal
import stat
import unittest

import harness
from harness import EXIT_UNREACHABLE, Agent, TempDir, openssl, run


class LifecycleTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("keyward-life-")
        self.agent = Agent(self.tmp)
        self.agent.start()

    def tearDown(self):
        self.agent.kill()
        self.agent.forget()
        self.tmp.cleanup()


class TestLifecycle(LifecycleTestCase):
    def test_sigterm_exits_0_and_removes_the_socket(self):
        self.assertTrue(os.path.exists(self.agent.socket))
        self.assertEqual(self.agent.stop(), 0)
        self.assertFalse(os.path.exists(self.agent.socket), "the socket outlived the agent")

    def test_sigint_exits_0(self):
        self.agent.signal(signal.SIGINT)
        self.assertEqual(self.agent.wait(), 0, self.agent.log_tail())
        self.assertFalse(os.path.exists(self.agent.socket))

    def test_sigterm_while_clients_are_connected(self):
        idle = [harness.connect_unix(self.agent.socket) for _ in range(5)]
        try:
            self.assertEqual(self.agent.stop(), 0)
        finally:
            for s in idle:
                s.close()

    def test_restart_on_the_same_state_dir_keeps_the_keys(self):
        keys = {"persist-ec": "ec-p256", "persist-rsa": "rsa-2048"}
        before = {}
        for name, key_type in keys.items():
            self.agent.create_key(name, key_type)
            before[name] = self.agent.pubkey(name)
        self.agent.restart()
        self.agent.restart()  # twice: the token is opened, not re-created
        listing = self.agent.cli("keys", "list").stdout
        message = self.tmp.write("m.txt", "after restart\n")
        for name in keys:
            with self.subTest(key=name):
                self.assertIn(name, listing)
                self.assertEqual(self.agent.pubkey(name, self.tmp.join(f"{name}.pem")), before[name])
                scheme = "ecdsa_secp256r1_sha256" if name.endswith("ec") else "rsa_pss_rsae_sha256"
                sig = self.tmp.join(f"{name}.sig")
                self.agent.cli("sign", name, "--scheme", scheme, "--in", message, "--out", sig)
                extra = [] if name.endswith("ec") else ["-sigopt", "rsa_padding_mode:pss",
                                                        "-sigopt", "rsa_pss_saltlen:digest"]
                openssl("dgst", "-sha256", *extra, "-verify", self.tmp.join(f"{name}.pem"), "-signature", sig,
                        message)

    def test_restart_after_a_crash_reuses_the_stale_socket(self):
        self.agent.create_key("survivor", "ec-p256")
        self.agent.proc.send_signal(signal.SIGKILL)
        self.agent.wait()
        self.assertTrue(os.path.exists(self.agent.socket), "expected a stale socket after SIGKILL")
        self.agent.start()
        self.agent.cli("keys", "show", "survivor")

    def test_second_agent_on_the_same_socket_refuses_to_start(self):
        other = Agent(self.tmp, name="second", socket=self.agent.socket)
        try:
            other.spawn()
            rc = other.wait(30)
            self.assertNotEqual(rc, 0, "a second agent took over a live socket:\n" + other.log_tail())
            self.assertIn(self.agent.socket, other.log_text())
        finally:
            other.kill()
            other.forget()
        self.agent.cli("status")  # the first one still serves

    def test_cli_reports_an_unreachable_agent(self):
        self.agent.stop()
        done = self.agent.cli("status", check=False)
        self.assertEqual(done.rc, EXIT_UNREACHABLE, done.describe())
        self.assertIn(self.agent.socket, done.stderr, "the error should say where it looked:\n" + done.describe())
        nowhere = self.agent.cli("keys", "list", env={"KEYWARD_SOCKET": self.tmp.join("nowhere.sock")},
                                 check=False)
        self.assertEqual(nowhere.rc, EXIT_UNREACHABLE, nowhere.describe())


class TestEmbeddedSecrets(LifecycleTestCase):
    def pins(self):
        result = {}
        for name in ("user.pin",):
            with open(os.path.join(self.agent.state_dir, name)) as f:
                result[name] = f.read().strip()
        return result

    def test_pin_files_are_mode_0600(self):
        st = os.stat(os.path.join(self.agent.state_dir, "user.pin"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f"user.pin is mode {stat.S_IMODE(st.st_mode):o}")
        self.assertEqual(st.st_uid, os.getuid())
        self.assertEqual(stat.S_IMODE(os.stat(self.agent.state_dir).st_mode) & 0o077, 0,
                         "the state directory is open to other users")

    def test_the_so_pin_is_not_kept(self):
        """The SO PIN initialises the embedded token and is then forgotten; an so.pin left
        by an older agent is removed at the next start."""
        so_pin = os.path.join(self.agent.state_dir, "so.pin")
        self.assertFalse(os.path.exists(so_pin))
        with open(so_pin, "w") as f:
            f.write("0123456789abcdef\n")
        os.chmod(so_pin, 0o600)
        self.agent.restart()
        self.assertFalse(os.path.exists(so_pin), "a stale so.pin survived a restart")
        self.agent.create_key("after-so-pin", "ec-p256")

    def test_pins_are_random_and_survive_restarts(self):
        first = self.pins()
        for pin in first.values():
            self.assertGreaterEqual(len(pin), 8, "a PIN this short is guessable")
        self.agent.restart()
        self.assertEqual(self.pins(), first, "a restart changed the PINs of an existing token")
        other = Agent(self.tmp, name="other")
        other.start()
        try:
            with open(os.path.join(other.state_dir, "user.pin")) as f:
                self.assertNotEqual(f.read().strip(), first["user.pin"], "two tokens got the same PIN")
        finally:
            other.stop()
            other.forget()

    def test_pins_never_appear_in_logs_argv_or_environment(self):
        self.agent.create_key("noisy", "ec-p256")
        message = self.tmp.write("m.txt", "x")
        self.agent.cli("sign", "noisy", "--scheme", "ecdsa_secp256r1_sha256", "--in", message,
                       "--out", self.tmp.join("m.sig"))
        self.agent.cli("sign", "noisy", "--scheme", "rsa_pss_rsae_sha256", "--in", message, check=False)
        self.agent.reload()
        pid = self.agent.pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode("utf-8", "replace")
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().decode("utf-8", "replace")
        self.agent.stop()
        log = self.agent.log_text()
        for name, pin in self.pins().items():
            with self.subTest(pin=name):
                self.assertNotIn(pin, log, f"the {name} value appears in the agent's log")
                self.assertNotIn(pin, cmdline, f"the {name} value appears in the agent's argv")
                self.assertNotIn(pin, environ, f"the {name} value appears in the agent's environment")

    def test_state_dir_holds_the_token(self):
        conf = self.agent.softhsm_conf()
        self.assertTrue(os.path.exists(conf))
        slots = run([harness.require_program("softhsm2-util"), "--show-slots"], env={"SOFTHSM2_CONF": conf}).stdout
        self.assertRegex(slots, r"Initialized:\s+yes")
        self.assertRegex(slots, r"User PIN init\.:\s+yes")


if __name__ == "__main__":
    harness.main()
