"""Access control: a uid the socket lets in (mode 0666) but the key's policy does not
(uid 65534 via setpriv) is refused with "access denied", the denial is logged with uid and
key, and the agent keeps serving others. A config entry grants exactly the keys it names."""

import os

import harness
from harness import EXIT_DENIED, NOBODY_UID, Agent, AgentTestCase, openssl


class PolicyTestCase(AgentTestCase):
    config_text = None

    @classmethod
    def make_agent(cls):
        harness.require_program("setpriv")
        cls.public = cls.tmp.public_dir("public")  # socket, inputs and outputs other uids can reach
        config = None
        if cls.config_text is not None:
            config = cls.tmp.write("keyward.toml", cls.config_text)
        cls.message = cls.tmp.write("public/message.txt", "sign me\n", mode=0o644)
        return Agent(cls.tmp, socket=os.path.join(cls.public, "agent.sock"), socket_mode=0o666, config=config)

    def sign_as(self, user, key, scheme="ecdsa_secp256r1_sha256"):
        out = os.path.join(self.public, f"{key}.{user}.sig")
        if os.path.exists(out):
            os.unlink(out)
        done = self.agent.cli("sign", key, "--scheme", scheme, "--in", self.message, "--out", out,
                              user=user, check=False)
        return done, out

    def assert_verifies(self, key, sig):
        pub = self.tmp.join(f"{key}.pub.pem")
        self.agent.pubkey(key, pub)
        openssl("dgst", "-sha256", "-verify", pub, "-signature", sig, self.message)

    def assert_denied(self, done):
        self.assertEqual(done.rc, EXIT_DENIED, done.describe())
        self.assertIn("access denied", done.stderr.lower(), done.describe())


class TestDefaultPolicy(PolicyTestCase):
    """No configuration: only root (and the agent's own uid) may use keys."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key("root-only", "ec-p256")

    def test_socket_is_mode_0666(self):
        self.assertEqual(os.stat(self.agent.socket).st_mode & 0o777, 0o666)

    def test_other_uid_is_denied_and_the_denial_is_logged(self):
        mark = self.agent.log_size()
        done, out = self.sign_as(NOBODY_UID, "root-only")
        self.assert_denied(done)
        self.assertFalse(os.path.exists(out) and os.path.getsize(out) > 0, "a denied sign wrote a signature")
        line = self.agent.wait_for_log(r"(?i)denied", since=mark)
        self.assertIn(str(NOBODY_UID), line, f"the denial does not name the uid: {line}")
        self.assertIn("root-only", line, f"the denial does not name the key: {line}")
        self.assertRegex(line, r"pid[= ]\d+", f"the denial does not name the pid: {line}")
        self.assertAgentAlive()

    def test_root_still_signs_after_a_denial(self):
        done, _ = self.sign_as(NOBODY_UID, "root-only")
        self.assert_denied(done)
        self.assertIn("allow_users / allow_groups", done.stderr, done.describe())
        done, out = self.sign_as(0, "root-only")
        self.assertEqual(done.rc, 0, done.describe())
        self.assert_verifies("root-only", out)

    def test_other_uid_may_not_manage_keys(self):
        created = self.agent.cli("keys", "create", "intruder", "--type", "ec-p256", user=NOBODY_UID, check=False)
        self.assert_denied(created)
        deleted = self.agent.cli("keys", "delete", "root-only", user=NOBODY_UID, check=False)
        self.assert_denied(deleted)
        for done in (created, deleted):  # the hint names the setting for managing keys, not for using them
            self.assertIn("admin_users / admin_groups", done.stderr, done.describe())
            self.assertNotIn("allow_users", done.stderr, done.describe())
        self.agent.cli("keys", "show", "root-only")  # still there
        self.assertEqual(self.agent.cli("keys", "show", "intruder", check=False).rc, harness.EXIT_NO_SUCH_KEY)

    def test_denial_does_not_reveal_whether_a_key_exists(self):
        done, _ = self.sign_as(NOBODY_UID, "no-such-key")
        self.assert_denied(done)


class TestConfiguredPolicy(PolicyTestCase):
    """[keys.NAME] allow_users / allow_groups grant signing on that key only."""

    config_text = (
        "# keyward integration test: grants for uid/gid 65534\n"
        "[keys.shared]\n"
        f"allow_users = [{NOBODY_UID}]\n"
        "\n"
        "[keys.group-shared]\n"
        f"allow_groups = [{NOBODY_UID}]\n"
    )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name in ("shared", "group-shared", "private"):
            cls.agent.create_key(name, "ec-p256")

    def test_granted_user_signs_that_key(self):
        done, out = self.sign_as(NOBODY_UID, "shared")
        self.assertEqual(done.rc, 0, done.describe())
        self.assert_verifies("shared", out)

    def test_granted_group_signs_that_key(self):
        done, out = self.sign_as(NOBODY_UID, "group-shared")
        self.assertEqual(done.rc, 0, done.describe())
        self.assert_verifies("group-shared", out)

    def test_granted_user_is_denied_other_keys(self):
        mark = self.agent.log_size()
        done, _ = self.sign_as(NOBODY_UID, "private")
        self.assert_denied(done)
        line = self.agent.wait_for_log(r"(?i)denied", since=mark)
        self.assertIn("private", line)
        self.assertIn(str(NOBODY_UID), line)

    def test_grant_to_sign_is_not_a_grant_to_manage(self):
        deleted = self.agent.cli("keys", "delete", "shared", user=NOBODY_UID, check=False)
        self.assert_denied(deleted)
        self.agent.cli("keys", "show", "shared")

    def test_root_signs_every_key(self):
        for key in ("shared", "private"):
            done, out = self.sign_as(0, key)
            self.assertEqual(done.rc, 0, done.describe())
            self.assert_verifies(key, out)


if __name__ == "__main__":
    harness.main()
