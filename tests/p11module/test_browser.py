#!/usr/bin/env python3
"""A real browser signs TLS handshakes through keyward-pkcs11.so: headless Chromium (Debian's
chromium) with a fresh NSS database ($HOME/.pki/nssdb) that holds the module and the test CA's
trust and no key, loads a page from `openssl s_server -Verify 1 -verify_return_error -www`;
the page (s_server prints the session, the client certificate included) shows the agent
identity's subject, and the agent's audit trail shows a signature made for the chromium
executable. Without the module in the database the same request gets no page.

Chromium picks a client certificate without a dialog only by policy
(AutoSelectCertificateForUrls), and it reads policies from /etc/chromium/policies/managed
only. The test never writes to the real /etc: Chromium runs in a private mount namespace
(`unshare -m`, needs root) where a copy of /etc/chromium with the policy is bind-mounted
over /etc/chromium.

NSS (3.87) loads the module through C_GetInterface: it asks for a fork-safe "PKCS 11"
interface (refused: the module needs C_Initialize again after fork), then for any "PKCS 11"
interface and gets the 2.40 one (p11module/interfaces.hpp)."""

import json
import os
import re
import shutil
import unittest

from p11env import P11Env
from harness import SServer, require_program, run
import harness

CHROMIUM = "/usr/lib/chromium/chromium"  # the binary itself; /usr/bin/chromium is a shell launcher


class BrowserCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("test_browser needs root: Chromium's policy is mounted in a private mount namespace")
        cls.chromium = require_program(CHROMIUM)
        cls.unshare = require_program("unshare")
        # Every signature in the audit trail (not only the first per key and program in an
        # interval), so each test finds the record of its own handshake.
        cls.env = P11Env("browser", agent_config='[agent]\naudit = "every-signature"')
        cls.server_cert, cls.server_key = cls.env.ca.server_cert()
        # s_server verifies the client's chain up to the root; Chromium sends the leaf and the
        # intermediates it finds (on the token, as certificate objects), so the server is given
        # the root only.
        cls.server_ca = cls.env.ca.cert

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def nss_home(self, name):
        """A HOME whose $HOME/.pki/nssdb trusts the test CA and loads keyward-pkcs11.so.
        The database itself holds no private key."""
        home = self.env.tmp.mkdir(f"home-{name}")
        db = os.path.join(home, ".pki", "nssdb")
        os.makedirs(db, mode=0o700)
        certutil, modutil = require_program("certutil"), require_program("modutil")
        run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"])
        run([certutil, "-A", "-d", f"sql:{db}", "-n", "keyward test CA", "-t", "C,,", "-i", self.env.ca.cert])
        run([modutil, "-dbdir", f"sql:{db}", "-add", "keyward", "-libfile", self.env.module, "-force"],
            env=self.env.client_env())
        keys = run([certutil, "-K", "-d", f"sql:{db}"], check=False)
        self.assertNotRegex(keys.stdout, r"<\s*\d+\s*>", "the NSS database itself must hold no private key")
        return home

    def policy_etc(self, name, url, subject_cn):
        """A copy of /etc/chromium with a managed policy that selects the client certificate
        whose subject CN is `subject_cn` for `url`, without asking."""
        etc = self.env.tmp.join(f"etc-chromium-{name}")
        # The package's own files (master_preferences) stay visible beside the policy.
        shutil.copytree("/etc/chromium", etc)
        managed = os.path.join(etc, "policies", "managed")
        os.makedirs(managed, exist_ok=True)
        rule = {"pattern": url, "filter": {"SUBJECT": {"CN": subject_cn}}}
        with open(os.path.join(managed, "keyward-test.json"), "w") as f:
            json.dump({"AutoSelectCertificateForUrls": [json.dumps(rule)]}, f)
        return etc

    def chromium_dom(self, name, url, home, etc):
        """Runs headless Chromium on `url` with HOME=`home` and /etc/chromium replaced by
        `etc` in its own mount namespace; returns the Completed run (stdout = the DOM)."""
        profile = self.env.tmp.mkdir(f"profile-{name}")
        # In the new namespace: bind the private policy copy over /etc/chromium (mount
        # propagation is private, so nothing leaks to the host), then become Chromium.
        script = 'mount --bind "$0" /etc/chromium && exec "$@"'
        argv = [self.unshare, "--mount", "--propagation", "private", "sh", "-c", script, etc,
                self.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--password-store=basic",
                f"--user-data-dir={profile}",
                # Ends a page that never loads (e.g. a certificate choice nobody makes when the
                # policy does not match) with an empty DOM, well inside the test's budget.
                "--timeout=15000", "--dump-dom", url]
        env = self.env.client_env(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                                  XDG_CACHE_HOME=os.path.join(home, ".cache"), DISPLAY=None, WAYLAND_DISPLAY=None)
        return run(argv, env=env, check=False, timeout=60, context=self.env.agent.log_tail)

    def fetch(self, name, identity, home, server_args=()):
        with SServer(self.server_cert, self.server_key, self.server_ca, extra_args=["-www", *server_args]) as server:
            url = f"https://127.0.0.1:{server.port}/"
            etc = self.policy_etc(name, url, identity)
            mark = self.env.agent.log_size()
            done = self.chromium_dom(name, url, home, etc)
            return done, server.output(), self.env.agent.log_since(mark)

    def assert_fetched_with(self, identity, protocol, signature_type, done, server_log, agent_log):
        detail = f"{done.describe()}\n--- s_server ---\n{server_log[-3000:]}\n--- agent ---\n{agent_log[-3000:]}"
        # s_server -www answers with the session it negotiated, the client certificate included.
        self.assertIn("Client certificate", done.stdout, "Chromium got no page with a client certificate:\n" + detail)
        self.assertRegex(done.stdout, rf"Subject:\s*CN\s*=\s*{re.escape(identity)}\b", detail)
        self.assertRegex(done.stdout, rf"Protocol\s*:\s*{re.escape(protocol)}\b", detail)
        # The scheme Chromium chose for its CertificateVerify, i.e. the mechanism the module served.
        self.assertRegex(done.stdout, rf"Peer signature type:\s*{re.escape(signature_type)}\s", detail)
        self.assertRegex(agent_log, rf"audit: op=sign key={re.escape(identity)} uid=\d+ pid=\d+ "
                                    rf"exe=\S*/chromium result=ok", detail)

    def test_ec_identity_signs_chromium_handshake(self):
        # TLS 1.3, ecdsa_secp256r1_sha256: CKM_ECDSA over a hash NSS computed.
        done, server_log, agent_log = self.fetch("ec", "p11-ec", self.nss_home("ec"))
        self.assert_fetched_with("p11-ec", "TLSv1.3", "ECDSA", done, server_log, agent_log)

    def test_rsa_identity_signs_chromium_handshake(self):
        # TLS 1.3 allows only RSA-PSS: CKM_RSA_PKCS_PSS.
        done, server_log, agent_log = self.fetch("rsa", "p11-rsa", self.nss_home("rsa"))
        self.assert_fetched_with("p11-rsa", "TLSv1.3", "RSA-PSS", done, server_log, agent_log)

    def test_rsa_pkcs1_in_tls12(self):
        # A TLS 1.2 server that accepts only rsa_pkcs1_sha256 from clients: CKM_RSA_PKCS
        # with the DigestInfo NSS built.
        done, server_log, agent_log = self.fetch("rsa12", "p11-rsa", self.nss_home("rsa12"),
                                                 ["-tls1_2", "-client_sigalgs", "RSA+SHA256"])
        self.assert_fetched_with("p11-rsa", "TLSv1.2", "RSA", done, server_log, agent_log)

    def test_module_removed_from_database_no_page(self):
        home = self.nss_home("removed")
        db = f"sql:{os.path.join(home, '.pki', 'nssdb')}"
        modutil = require_program("modutil")
        run([modutil, "-dbdir", db, "-delete", "keyward", "-force"], env=self.env.client_env())
        listed = run([modutil, "-dbdir", db, "-list"], env=self.env.client_env()).stdout
        self.assertNotIn("keyward-pkcs11", listed, listed)
        done, server_log, agent_log = self.fetch("removed", "p11-ec", home)
        detail = f"{done.describe()}\n--- s_server ---\n{server_log[-3000:]}"
        self.assertNotIn("Client certificate", done.stdout, detail)
        self.assertNotRegex(agent_log, r"audit: op=sign .*exe=\S*/chromium", agent_log)
        # The server asked for a certificate, got none and ended the handshake.
        self.assertRegex(server_log, r"peer did not return a certificate", detail)

if __name__ == "__main__":
    harness.main()
