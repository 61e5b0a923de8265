#!/usr/bin/env python3
"""TLS client authentication with agent keys through keyward-pkcs11.so, by programs that
speak PKCS#11 and not OpenSSL: gnutls-cli (TLS 1.2 and 1.3, EC and RSA — RSA-PSS in 1.3,
PKCS#1 v1.5 in 1.2) against `openssl s_server -Verify 1 -verify_return_error`, and
`git clone` over HTTPS (libcurl-gnutls, finding the module through a p11-kit module file)
from a server that requires the client certificate."""

import os
import re
import subprocess
import unittest

from p11env import P11Env
from harness import SServer, end_process, free_port, require_program, run, wait_for_port
import harness

PRIORITIES = {"1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.2", "1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3"}


class TlsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = P11Env("tls", shared=True)
        cls.server_cert, cls.server_key = cls.env.ca.server_cert()
        # gnutls-cli sends the one certificate object it was given (the leaf, issued by the
        # intermediate), so the server knows the intermediate as well as the root.
        with open(cls.env.ca.cert) as root, open(cls.env.inter_cert) as inter:
            cls.client_cas = cls.env.tmp.write("client-cas.pem", root.read() + inter.read())

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def gnutls_cli(self, key, version, port, extra_env=None):
        uri = f"pkcs11:token=keyward;object={key}"
        argv = [require_program("gnutls-cli"), "--provider", self.env.module, "--x509keyfile", f"{uri};type=private",
                "--x509certfile", f"{uri};type=cert", "--x509cafile", self.env.ca.cert, "--priority",
                PRIORITIES[version], "-p", str(port), "localhost"]
        return run(argv, input="GET / HTTP/1.0\r\n\r\n", env=self.env.client_env(**(extra_env or {})), check=False,
                   timeout=60, context=self.env.agent.log_tail)

    def test_gnutls_cli_mtls(self):
        for key in ("p11-ec", "p11-rsa"):
            for version in ("1.2", "1.3"):
                with self.subTest(key=key, version=version):
                    before = self.env.agent.signatures()
                    with SServer(self.server_cert, self.server_key, self.client_cas, extra_args=["-www"]) as server:
                        done = self.gnutls_cli(key, version, server.port)
                        self.assertEqual(done.rc, 0, done.describe() + "\n" + server.output())
                        # s_server -www's page: the protocol, how the client signed, and the
                        # client certificate it verified.
                        self.assertRegex(done.stdout, rf"Protocol\s*: TLSv{re.escape(version)}\b", done.describe())
                        signed = re.search(r"Peer signature type: (\S+)", done.stdout)
                        self.assertTrue(signed, done.describe())
                        if key == "p11-ec":
                            self.assertEqual(signed.group(1), "ECDSA")
                        elif version == "1.3":
                            self.assertEqual(signed.group(1), "RSA-PSS")
                        self.assertRegex(done.stdout, r"HTTP/1\.0 200 ok", done.describe())
                        # s_server -www shows the client certificate it verified in its page.
                        self.assertIn("Client certificate", done.stdout, done.describe())
                        self.assertRegex(done.stdout, rf"Subject:.*CN\s*=\s*{key}\b", done.describe())
                    self.assertGreater(self.env.agent.signatures(), before, "the agent made the signature")

    def test_git_clone_over_https_with_client_certificate(self):
        git = require_program("git")
        tmp = self.env.tmp
        # A repository, published for the dumb HTTP protocol.
        work = tmp.mkdir("work")
        run([git, "init", "-q", "-b", "main", work])
        with open(os.path.join(work, "README"), "w") as f:
            f.write("served to keyward-pkcs11 clients only\n")
        run([git, "-C", work, "add", "README"])
        run([git, "-C", work, "-c", "user.name=t", "-c", "user.email=t@example", "commit", "-q", "-m", "first"])
        served = tmp.mkdir("served")
        bare = os.path.join(served, "repo.git")
        run([git, "clone", "-q", "--bare", work, bare])
        run([git, "-C", bare, "update-server-info"])
        # The module registered for git's GnuTLS the way users do: a p11-kit module file in
        # their own configuration. p11-kit ignores a user's module files when the user is root,
        # so git runs as an ordinary user (uid 65534), whom the agent's policy lets sign.
        public = tmp.public_dir("git")
        home = os.path.join(public, "home")
        modules = os.path.join(home, ".config", "pkcs11", "modules")
        os.makedirs(modules)
        with open(os.path.join(modules, "keyward.module"), "w") as f:
            # p11-kit knows git's HTTPS helper by the name of the file behind the
            # git-remote-https symlink.
            f.write(f"module: {self.env.module}\nenable-in: git-remote-http\n")
        run(["chown", "-R", f"{harness.NOBODY_UID}:{harness.NOBODY_UID}", public])
        port = free_port()
        log = tmp.join("https.log")
        proc = subprocess.Popen([require_program("python3"), os.path.join(os.path.dirname(__file__), "https_server.py"),
                                 served, str(port), self.server_cert, self.server_key, self.client_cas, log],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, proc, "https_server.py")
            uri = "pkcs11:token=keyward;object=p11-ec"
            clone = os.path.join(public, "clone")
            env = self.env.client_env(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                                      GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1",
                                      # git 2.39 with libcurl-gnutls ignores http.sslCAInfo here.
                                      GIT_SSL_CAINFO=self.env.ca.cert)
            base = [git, "-c", f"http.sslCert={uri};type=cert", "-c", f"http.sslKey={uri};type=private"]
            done = run(base + ["clone", "-q", f"https://localhost:{port}/repo.git", clone], env=env, check=False,
                       timeout=120, user=harness.NOBODY_UID, context=self.env.agent.log_tail)
            self.assertEqual(done.rc, 0, done.describe())
            with open(os.path.join(clone, "README")) as f:
                self.assertIn("keyward-pkcs11", f.read())
            with open(log) as f:
                self.assertIn("client=p11-ec", f.read())
            # Without the client certificate, the same server refuses.
            done = run([git, "clone", "-q",
                        f"https://localhost:{port}/repo.git", os.path.join(public, "clone2")], env=env, check=False,
                       timeout=120, user=harness.NOBODY_UID)
            self.assertNotEqual(done.rc, 0, done.describe())
        finally:
            end_process(proc)
            if proc.stdout:
                proc.stdout.close()


if __name__ == "__main__":
    harness.main()
