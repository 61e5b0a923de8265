#!/usr/bin/env python3
"""keyward as packaged, under a real systemd: `meson install` into a temporary destdir, then a
container booted with systemd-nspawn (`--directory=/ --volatile=yes`: the host's /usr on a
fresh, empty /etc; the install bound over /usr/local) runs tests/boot/e2e_inside.sh as its one
unit. It checks socket activation (the first client starts the agent and is served), the
service running as `keyward` with `tss`, no capabilities, NoNewPrivileges and no core dumps,
a member of group keyward signing (verified with openssl), a non-member refused at the
socket, `systemctl reload` keeping the process and its keys, sd_notify's STATUS line, and a
clean stop. Needs systemd-nspawn (package systemd-container) and root."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
import harness  # noqa: E402

BOOT_TIMEOUT = 180


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class BootedServiceTest(harness.TempDirTestCase):
    @classmethod
    def prepare(cls):
        cls.checks, cls.output = cls.boot()

    @classmethod
    def boot(cls):
        dest = cls.tmp.mkdir("destdir")
        done = harness.run([harness.require_program("meson"), "install", "-C", harness.bin_dir(), "--no-rebuild",
                            "--destdir", dest], check=False, timeout=300)
        assert done.rc == 0, done.describe()
        prefix = None
        for root, _dirs, files in os.walk(dest):
            if "keywardd" in files and root.endswith("/sbin"):
                prefix = os.path.dirname(root)
        assert prefix, f"meson install put no sbin/keywardd under {dest}"
        inside_prefix = prefix[len(dest):]
        assert inside_prefix.startswith("/usr/"), f"the boot test binds the install over {inside_prefix}: " \
                                                  "configure the build with a prefix under /usr (default /usr/local)"
        share = cls.tmp.mkdir("e2e", 0o755)
        script = os.path.join(harness.source_dir(), "tests", "boot", "e2e_inside.sh")
        with open(script) as f:
            cls.tmp.write("e2e/e2e.sh", f.read(), mode=0o755)
        cls.tmp.write("e2e/users.conf", 'u alice - "in group keyward"\nm alice keyward\n'
                                        'u bob - "not in group keyward"\n')
        unit = cls.tmp.write("keyward-e2e.service",
                             "[Unit]\nDescription=keyward end-to-end check\nAfter=basic.target\n"
                             "[Service]\nType=oneshot\nExecStart=/e2e/e2e.sh\n"
                             "SuccessAction=poweroff-force\nFailureAction=poweroff-force\n")
        nspawn = harness.require_program("systemd-nspawn")
        argv = [nspawn, "--directory=/", "--volatile=yes", "--register=no", "--keep-unit", "--quiet",
                f"--bind-ro={prefix}:{inside_prefix}", f"--bind={share}:/e2e",
                f"--bind-ro={unit}:/etc/systemd/system/keyward-e2e.service",
                "--boot", "--", "systemd.unit=keyward-e2e.service", "systemd.firstboot=off"]
        result = os.path.join(share, "result.txt")
        console = open(cls.tmp.join("console.log"), "wb")
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            # The container's halt does not always end nspawn here (it refuses to remove its
            # propagation directory): the result file says when the work is done.
            while time.monotonic() - started < BOOT_TIMEOUT:
                if "E2E-DONE" in read_text(result):
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
            print(f"boot test: container work finished after {time.monotonic() - started:.1f} s")
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if proc.poll() is None:
                harness.end_process(proc)
            console.close()
        output = read_text(result)
        if "E2E-DONE" not in output:
            tail = read_text(cls.tmp.join("console.log"))[-4000:]
            raise AssertionError(f"the booted container did not finish its checks in {BOOT_TIMEOUT} s\n"
                                 f"--- result ---\n{output[-4000:]}\n--- console ---\n{tail}")
        return harness.parse_checks(output), output

    def check(self, name):
        self.assertIn(name, self.checks, self.output[-3000:])
        return self.checks[name]

    def test_socket_activation_serves_the_first_client(self):
        self.assertEqual(self.check("socket-active"), "active")
        self.assertEqual(self.check("socket-perms"), "srw-rw---- root keyward")
        status = self.check("alice-status")
        self.assertIn('"tokens"', status)
        self.assertIn('"present"', status)
        self.assertEqual(self.check("service-active"), "active")

    def test_the_service_runs_unprivileged_and_hardened(self):
        user, group, supplementary = self.check("service-user").split()
        self.assertEqual((user, group), ("keyward", "keyward"))
        self.assertIn("tss", supplementary.split(","))
        self.assertIn("CapEff: 0000000000000000", self.check("service-dumpable"))
        self.assertIn("NoNewPrivs: 1", self.check("service-dumpable"))
        self.assertRegex(self.check("service-core"), r"Max core file size 0 0 bytes")

    def test_a_member_signs_and_a_non_member_is_refused(self):
        self.assertIn("created key web", self.check("key-create"))
        self.assertEqual(self.check("alice-signature"), "Verified OK")
        refused = self.check("bob-refused")
        self.assertIn("Permission denied", refused)
        self.assertTrue(refused.endswith("rc=3"), refused)

    def test_audit_records_are_structured_in_the_journal(self):
        fields = self.check("journal-fields").split()
        self.assertIn("KEYWARD_KEY=web", fields)
        self.assertIn(f"KEYWARD_UID={self.check('alice-uid')}", fields)
        self.assertIn("KEYWARD_RESULT=ok", fields)

    def test_reload_keeps_the_process_and_its_keys(self):
        self.assertEqual(self.check("reload-active"), "active")
        self.assertTrue(self.check("after-reload-sign").endswith("rc=0"), self.check("after-reload-sign"))
        self.assertIn("configuration reloaded", self.output)
        self.assertRegex(self.check("notify-status"), r"\d+ keys? on 1/1 tokens present")

    def test_it_stops_cleanly(self):
        self.assertEqual(self.check("stopped"), "inactive")


if __name__ == "__main__":
    unittest.main(verbosity=2)
