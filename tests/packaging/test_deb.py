#!/usr/bin/env python3
"""The Debian packaging: `dpkg-buildpackage -b -us -uc` on a copy of the source tree builds
keyward, keyward-openssl, keyward-pkcs11, libkeyward-client0 and libkeyward-client-dev;
`lintian --fail-on error` accepts them; installed into a throw-away overlay of this machine
(tests/packaging/install_and_boot.sh: nothing on the host changes) they create the keyward
user through sysusers and enable the socket, and booted with systemd-nspawn that copy serves
a signature to a member of group keyward."""

import glob
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
import harness  # noqa: E402


def source_files(src):
    """The tracked files (a clean clone has exactly these), else everything but build trees."""
    if os.path.isdir(os.path.join(src, ".git")):
        out = subprocess.run(["git", "-C", src, "ls-files", "-z"], check=True, capture_output=True).stdout
        return [f for f in out.decode().split("\0") if f]
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith("build") and d != ".git"]
        files += [os.path.relpath(os.path.join(root, n), src) for n in names]
    return files


class DebianPackageTest(harness.TempDirTestCase):
    @classmethod
    def prepare(cls):
        src = harness.source_dir()
        tree = cls.tmp.mkdir("keyward")
        for rel in source_files(src):
            dst = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(src, rel), dst, follow_symlinks=False)
        cls.build_log = cls.tmp.join("build.log")
        with open(cls.build_log, "wb") as log:
            rc = subprocess.run([harness.require_program("dpkg-buildpackage"), "-b", "-us", "-uc"], cwd=tree,
                                stdout=log, stderr=subprocess.STDOUT, timeout=1500).returncode
        cls.build_rc = rc
        cls.debs = sorted(d for d in glob.glob(os.path.join(cls.tmp.path, "*.deb")) if "-dbgsym_" not in d)
        cls.changes = glob.glob(os.path.join(cls.tmp.path, "*.changes"))

    def test_the_packages_build(self):
        with open(self.build_log, errors="replace") as f:
            tail = f.read()[-3000:]
        self.assertEqual(self.build_rc, 0, tail)
        names = sorted(os.path.basename(d).split("_")[0] for d in self.debs)
        self.assertEqual(names, ["keyward", "keyward-openssl", "keyward-pkcs11", "libkeyward-client-dev",
                                 "libkeyward-client0"])

    def contents(self, package):
        deb = next(d for d in self.debs if os.path.basename(d).startswith(package + "_"))
        return harness.run([harness.require_program("dpkg-deb"), "-c", deb]).stdout

    def test_each_package_holds_its_part(self):
        self.assertEqual(self.build_rc, 0)
        keyward = self.contents("keyward")
        for path in ("./usr/sbin/keywardd", "./usr/bin/keyward", "./lib/systemd/system/keywardd.socket",
                     "./lib/systemd/system/keywardd.service", "./usr/lib/sysusers.d/keyward.conf",
                     "./etc/keyward/keyward.toml", "./usr/share/man/man8/keywardd.8.gz"):
            self.assertIn(path, keyward)
        self.assertRegex(self.contents("keyward-openssl"), r"ossl-modules/keyward\.so")
        self.assertRegex(self.contents("keyward-openssl"), r"engines-3/keyward\.so")
        self.assertRegex(self.contents("keyward-pkcs11"), r"pkcs11/keyward-pkcs11\.so")
        self.assertRegex(self.contents("libkeyward-client-dev"), r"include/keyward/ipc/client\.hpp")

    def test_lintian_finds_no_errors(self):
        self.assertEqual(self.build_rc, 0)
        done = harness.run([harness.require_program("lintian"), "--fail-on", "error", *self.changes], check=False,
                           timeout=600)
        self.assertEqual(done.rc, 0, done.stdout + done.stderr)

    def test_installed_they_make_the_user_enable_the_socket_and_sign(self):
        self.assertEqual(self.build_rc, 0)
        script = os.path.join(harness.source_dir(), "tests", "packaging", "install_and_boot.sh")
        done = harness.run(["sh", script, self.tmp.join("install"), *self.debs], check=False, timeout=600)
        checks = harness.parse_checks(done.stdout)
        report = done.stdout[-4000:] + done.stderr[-2000:]
        self.assertTrue(checks.get("dpkg-install", "").startswith("rc=0"), report)
        self.assertRegex(checks.get("user", ""), r"^keyward:x:\d+:\d+:", report)
        self.assertIn("tss", checks.get("groups", "").split(), report)
        self.assertEqual(checks.get("socket-enabled"), "enabled", report)
        self.assertEqual(checks.get("boot-socket"), "active", report)
        self.assertEqual(checks.get("boot-sign"), "Verified OK", report)
        self.assertEqual(checks.get("boot-user"), "keyward", report)


if __name__ == "__main__":
    unittest.main(verbosity=2)
