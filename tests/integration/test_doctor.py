#!/usr/bin/env python3
"""`keyward doctor` (docs/monitoring.md): against a running keywardd with an enrolled
identity (healthy: exit 0), then with its PIN file broken and its state directory opened
to everyone (exit 2, each failure with its fix); offline with --config on the same file and
on one whose ACME CA does not answer; and an identity whose certificate expired."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Agent, TempDir, TestCA, free_port, wait_until  # noqa: E402

EXIT_WARNINGS = 1
EXIT_FAILURES = 2


def config_text(state_dir, ca, hdir, lifetime, extra=""):
    return f"""
[agent]
state_dir = "{state_dir}"
""" + harness.helper_identity_toml(ca, hdir, lifetime) + extra


class DoctorCase(unittest.TestCase):
    lifetime = 86400

    def setUp(self):
        self.tmp = TempDir("keyward-doctor-")
        self.ca = TestCA(self.tmp.join("ca"))
        self.hdir = self.tmp.mkdir("helper")
        self.state_dir = self.tmp.join("agent-state")
        self.config = self.tmp.write("keyward.toml", config_text(self.state_dir, self.ca, self.hdir, self.lifetime))
        sock_dir = self.tmp.public_dir("sock")  # so that another uid can ask (and be refused)
        self.agent = Agent(self.tmp, config=self.config, state_dir=self.state_dir,
                           socket=os.path.join(sock_dir, "agent.sock"), socket_mode=0o666)
        self.agent.start()
        self.assertTrue(wait_until(lambda: self.status() == "valid", 60, 0.3), self.agent.log_tail())

    def tearDown(self):
        os.chmod(self.state_dir, 0o700)
        self.agent.kill()
        self.agent.forget()
        self.tmp.cleanup()

    def status(self):
        return self.agent.cli("identities", "show", "web", json=True).data["status"]

    def doctor(self, *args, json=False):
        done = self.agent.cli("doctor", *args, json=json, check=False)
        if json:
            import json as jsonlib
            done.data = jsonlib.loads(done.stdout)
        return done

    def line(self, done, prefix):
        """The first line starting with `prefix`."""
        for line in done.stdout.splitlines():
            if line.startswith(prefix):
                return line
        self.fail(f"no line starting with {prefix!r}:\n{done.describe()}")


class DoctorTest(DoctorCase):
    def test_healthy_agent(self):
        done = self.doctor()
        self.assertEqual(done.rc, 0, done.describe())
        self.assertIn("certificate matches device key", self.line(done, "ok      identity web: certificate matches"))
        self.line(done, "ok      token embedded: present, logged in")
        self.line(done, f"ok      state_dir {self.state_dir}: owned by uid")
        self.line(done, "ok      identity web: certificate valid until")
        self.line(done, "ok      clock system")
        self.line(done, "ok      socket ")
        j = self.doctor(json=True)
        self.assertEqual(j.rc, 0, j.describe())
        self.assertEqual(j.data["failures"], 0)
        self.assertEqual(j.data["warnings"], 0)
        self.assertTrue(all(set(c) == {"area", "name", "level", "message", "fix"} for c in j.data["checks"]))

    def test_only_admins_may_ask(self):
        done = self.agent.cli("doctor", user=harness.NOBODY_UID, check=False)
        self.assertEqual(done.rc, harness.EXIT_DENIED, done.describe())
        self.assertIn("admin_users", done.stderr)

    def test_broken_pin_file(self):
        pin_file = os.path.join(self.state_dir, "user.pin")
        self.assertTrue(os.path.exists(pin_file), os.listdir(self.state_dir))
        with open(pin_file, "w"):
            pass  # emptied
        done = self.doctor()
        self.assertEqual(done.rc, EXIT_FAILURES, done.describe())
        line = self.line(done, "FAILURE token embedded: PIN file")
        self.assertIn("is empty; fix: write the token's user PIN", line)

    def test_wrong_permission_state_dir(self):
        os.chmod(self.state_dir, 0o777)
        done = self.doctor()
        self.assertEqual(done.rc, EXIT_FAILURES, done.describe())
        line = self.line(done, f"FAILURE state_dir {self.state_dir}")
        self.assertIn("writable by others (mode 0777)", line)
        self.assertIn("; fix: ", line)

    def test_offline_config(self):
        done = self.doctor("--config", self.config)
        self.assertEqual(done.rc, 0, done.describe())
        self.line(done, "ok      identity web: chains to")
        self.line(done, "skipped socket")

    def test_offline_unreachable_ca_and_bad_file(self):
        port = free_port()  # nothing listens there
        other = self.tmp.write("other.toml", config_text(self.state_dir, self.ca, self.hdir, self.lifetime, f"""
[identities.acme1]
subject = "/CN=acme1.example"
sans = ["dns:acme1.example"]
trust_anchors = "{self.ca.cert}"
auto_enroll = false
[identities.acme1.issuer]
kind = "acme"
directory = "https://127.0.0.1:{port}/dir"
http01_listen = "127.0.0.1:{free_port()}"
"""))
        done = self.doctor("--config", other)
        self.assertEqual(done.rc, EXIT_FAILURES, done.describe())
        line = self.line(done, "FAILURE identity acme1: issuer https://127.0.0.1")
        self.assertIn("unreachable: Connection refused; fix: check that the CA runs", line)
        self.line(done, "WARNING identity acme1: not enrolled")
        bad = self.tmp.write("bad.toml", "[agent]\nno_such_setting = 1\n")
        done = self.doctor("--config", bad)
        self.assertEqual(done.rc, EXIT_FAILURES, done.describe())
        self.assertIn("unknown setting", self.line(done, "FAILURE config "))


class ExpiredDoctorTest(DoctorCase):
    lifetime = 4

    def test_expired_certificate(self):
        with open(os.path.join(self.hdir, "mode"), "w") as f:
            f.write("unreachable\n")
        self.assertTrue(wait_until(lambda: self.status() == "expired", 30, 0.3), self.agent.log_tail())
        done = self.doctor()
        self.assertEqual(done.rc, EXIT_FAILURES, done.describe())
        line = self.line(done, "FAILURE identity web: certificate expired at")
        self.assertIn("fix: keyward renew web --now", line)
        self.assertIn("failures in a row", self.line(done, "WARNING identity web: last attempt"))


if __name__ == "__main__":
    harness.main()
