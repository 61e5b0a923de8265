#!/usr/bin/env python3
"""Java through keyward-pkcs11.so: SunPKCS11 configured with the module, `keytool -list`
shows the agent keys that have certificates, and a JSSE client (KeywardClient.java, run
with the JDK's single-file launcher) authenticates with them — TLS 1.2 and 1.3, EC and
RSA — against `openssl s_server -Verify 1 -verify_return_error`."""

import os
import re
import unittest

from p11env import P11Env
from harness import SServer, require_program, run
import harness

HERE = os.path.dirname(os.path.abspath(__file__))


class JavaCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = P11Env("java")
        cls.config = cls.env.tmp.write("keyward-pkcs11.cfg",
                                       f"name = keyward\nlibrary = {cls.env.module}\nslot = 1\n")
        cls.server_cert, cls.server_key = cls.env.ca.server_cert()
        with open(cls.env.ca.cert) as root, open(cls.env.inter_cert) as inter:
            cls.client_cas = cls.env.tmp.write("client-cas.pem", root.read() + inter.read())

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def test_keytool_lists_the_keys_with_certificates(self):
        done = run([require_program("keytool"), "-list", "-keystore", "NONE", "-storetype", "PKCS11",
                    "-providerClass", "sun.security.pkcs11.SunPKCS11", "-providerArg", self.config,
                    "-storepass", "any"], env=self.env.client_env(), context=self.env.agent.log_tail)
        self.assertRegex(done.stdout, r"(?m)^p11-ec, PrivateKeyEntry", done.stdout)
        self.assertRegex(done.stdout, r"(?m)^p11-rsa, PrivateKeyEntry", done.stdout)

    def test_jsse_client_authentication(self):
        java = require_program("java")
        for key in ("p11-ec", "p11-rsa"):
            for protocol in ("TLSv1.2", "TLSv1.3"):
                with self.subTest(key=key, protocol=protocol):
                    before = self.env.agent.signatures()
                    with SServer(self.server_cert, self.server_key, self.client_cas, extra_args=["-www"]) as server:
                        done = run([java, os.path.join(HERE, "java", "KeywardClient.java"), self.config, key,
                                    self.env.ca.cert, str(server.port), protocol], env=self.env.client_env(),
                                   check=False, timeout=180, context=self.env.agent.log_tail)
                        self.assertEqual(done.rc, 0, done.describe() + "\n" + server.output()[-2000:])
                    self.assertIn(f"protocol {protocol}", done.stdout)
                    self.assertRegex(done.stdout, rf"Protocol\s*: {re.escape(protocol)}\b", done.describe())
                    self.assertRegex(done.stdout, rf"Subject:.*CN\s*=\s*{key}\b", done.describe())
                    self.assertGreater(self.env.agent.signatures(), before, "the agent made the signature")


if __name__ == "__main__":
    harness.main()
