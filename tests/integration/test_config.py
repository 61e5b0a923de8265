"""Configuration: a bad file stops keywardd before it serves anything, with an error naming
the file, the line and the key; SIGHUP reloads a changed file without dropping working keys,
and a broken file on SIGHUP leaves the running configuration in force."""

import os
import unittest

import harness
from harness import EXIT_DENIED, NOBODY_UID, Agent, TempDir, keywardd_path, openssl, run


class TestBadConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("keyward-config-")

    def tearDown(self):
        self.tmp.cleanup()

    def start_with(self, text, name="bad.toml"):
        path = self.tmp.write(name, text)
        sock = self.tmp.join("agent.sock")
        done = run([keywardd_path(), "--config", path, "--state-dir", self.tmp.join("state"), "--socket", sock,
                    "--log-level", "debug"], check=False, timeout=30)
        self.assertNotEqual(done.rc, 0, "keywardd started on a bad configuration:\n" + done.describe())
        self.assertFalse(os.path.exists(sock), "keywardd created its socket despite a bad configuration")
        self.assertIn(path, done.stderr, "the error does not name the file:\n" + done.describe())
        return path, done

    def assert_names(self, done, path, line, key):
        self.assertIn(f"{path}:{line}", done.stderr, f"the error does not name line {line}:\n" + done.describe())
        if key:
            self.assertIn(key, done.stderr, f"the error does not name the key {key}:\n" + done.describe())

    def test_syntax_error(self):
        path, done = self.start_with('[agent]\nlog_level = "debug"\nsocket_mode = "0600\n')
        self.assert_names(done, path, 3, None)

    def test_unknown_setting(self):
        path, done = self.start_with('[agent]\nlog_level = "info"\nbogus_setting = 1\n')
        self.assert_names(done, path, 3, "agent.bogus_setting")

    def test_unknown_section(self):
        path, done = self.start_with('# comment\n\n[agnet]\nlog_level = "info"\n')
        self.assert_names(done, path, 3, "agnet")

    def test_wrong_type(self):
        path, done = self.start_with('[agent]\nlog_level = 5\n')
        self.assert_names(done, path, 2, "agent.log_level")

    def test_wrong_type_in_a_key_policy(self):
        path, done = self.start_with('[keys.web]\n\nallow_users = "nobody"\n')
        self.assert_names(done, path, 3, "keys.web.allow_users")

    def test_unknown_user(self):
        path, done = self.start_with('[keys.web]\nallow_users = ["no-such-user-keyward"]\n')
        self.assert_names(done, path, 2, "keys.web.allow_users")
        self.assertIn("no-such-user-keyward", done.stderr)

    def test_missing_config_file(self):
        missing = self.tmp.join("absent.toml")
        done = run([keywardd_path(), "--config", missing, "--state-dir", self.tmp.join("state"), "--socket",
                    self.tmp.join("agent.sock")], check=False, timeout=30)
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn(missing, done.stderr, done.describe())


class TestReload(unittest.TestCase):
    """One agent whose config changes under it; tests run in order (names sort)."""

    @classmethod
    def setUpClass(cls):
        harness.require_program("setpriv")
        cls.tmp = TempDir("keyward-reload-")
        cls.public = cls.tmp.public_dir("public")
        cls.config = cls.tmp.write("keyward.toml", '[keys.unrelated]\nallow_users = [0]\n')
        cls.message = cls.tmp.write("public/message.txt", "reload me\n", mode=0o644)
        cls.agent = Agent(cls.tmp, socket=os.path.join(cls.public, "agent.sock"), socket_mode=0o666,
                          config=cls.config)
        cls.agent.start()
        cls.agent.create_key("work", "ec-p256")
        cls.pub = cls.tmp.join("work.pub.pem")
        cls.pem = cls.agent.pubkey("work", cls.pub)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.agent.stop()
        finally:
            cls.agent.kill()
            cls.agent.forget()
            cls.tmp.cleanup()

    def sign(self, user):
        out = os.path.join(self.public, f"work.{user}.sig")
        done = self.agent.cli("sign", "work", "--scheme", "ecdsa_secp256r1_sha256", "--in", self.message,
                              "--out", out, user=user, check=False)
        if done.rc == 0:
            openssl("dgst", "-sha256", "-verify", self.pub, "-signature", out, self.message)
        return done

    def rewrite(self, text):
        # Replace atomically, as an editor or a config manager would.
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)

    def test_1_before_reload_only_root_signs(self):
        self.assertEqual(self.sign(0).rc, 0)
        self.assertEqual(self.sign(NOBODY_UID).rc, EXIT_DENIED)

    def test_2_sighup_applies_a_changed_config_and_keeps_the_key(self):
        self.rewrite(f'[keys.work]\nallow_users = [{NOBODY_UID}]\n')
        self.assertTrue(self.agent.reload(), "the agent reported a failed reload:\n" + self.agent.log_tail())
        self.assertTrue(self.agent.alive())
        granted = self.sign(NOBODY_UID)
        self.assertEqual(granted.rc, 0, "the reloaded grant is not in force:\n" + granted.describe())
        self.assertEqual(self.sign(0).rc, 0)
        self.assertEqual(self.agent.pubkey("work"), self.pem, "the key changed across a reload")

    def test_3_broken_config_on_sighup_keeps_the_running_one(self):
        self.rewrite('[keys.work]\nallow_users = [65534\n')
        self.assertFalse(self.agent.reload(), "a broken configuration was reported as reloaded")
        self.assertTrue(self.agent.alive(), "a broken configuration on SIGHUP killed the agent")
        self.assertIn(self.config, self.agent.log_text().split("SIGHUP")[-1],
                      "the reload error does not name the file")
        self.assertEqual(self.sign(NOBODY_UID).rc, 0, "the previous configuration is no longer in force")
        self.assertEqual(self.sign(0).rc, 0)

    def test_4_revoking_a_grant_on_sighup(self):
        self.rewrite('[keys.unrelated]\nallow_users = [0]\n')
        self.assertTrue(self.agent.reload())
        self.assertEqual(self.sign(NOBODY_UID).rc, EXIT_DENIED)
        self.assertEqual(self.sign(0).rc, 0)
        self.assertIn("work", self.agent.cli("keys", "list").stdout)


if __name__ == "__main__":
    harness.main()
