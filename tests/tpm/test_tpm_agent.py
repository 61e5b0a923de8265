#!/usr/bin/env python3
"""keywardd with a TPM token on a real swtpm (no resource manager): keys created with
`keyward keys create --token tpm`, signatures and CSRs checked by openssl, interop with
Debian's tpm2-openssl provider both ways (`keys import`, same public key), mTLS through the
keyward provider with a TPM-held key (TLS 1.2 and 1.3), and swtpm restarted under the agent."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "provider"))
import harness  # noqa: E402
import provider_helpers as ph  # noqa: E402


class Swtpm:
    """swtpm on a Unix socket with its state in `directory` (kept across restart())."""

    def __init__(self, directory):
        self.dir = directory
        self.state = os.path.join(directory, "state")
        os.makedirs(self.state, exist_ok=True)
        self.sock = os.path.join(directory, "tpm.sock")
        self.tcti = f"swtpm:path={self.sock}"
        self.proc = None
        self.start()

    def start(self):
        swtpm = harness.require_program("swtpm")
        for p in (self.sock, self.sock + ".ctrl"):
            if os.path.exists(p):
                os.unlink(p)
        self.proc = subprocess.Popen(
            [swtpm, "socket", "--tpm2", "--server", f"type=unixio,path={self.sock}",
             "--ctrl", f"type=unixio,path={self.sock}.ctrl", "--tpmstate", f"dir={self.state}",
             "--flags", "not-need-init,startup-clear", "--log", f"file={self.dir}/swtpm.log,level=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not harness.wait_until(lambda: os.path.exists(self.sock) and os.path.exists(self.sock + ".ctrl"), 10):
            raise AssertionError("swtpm did not create its sockets")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.kill()
        self.start()

    def env(self):
        return {"TPM2OPENSSL_TCTI": self.tcti, "TPM2TOOLS_TCTI": self.tcti, "TSS2_LOG": "all+NONE"}

    def tool(self, *argv, check=True):
        """A tpm2-openssl / tpm2-tools command against this swtpm."""
        return harness.run(list(argv), env=self.env(), check=check)

    def flush_transients(self):
        """tpm2-openssl leaves its objects loaded on a TPM without a resource manager; clear
        them (and with them the agent's cached key, which it must then reload)."""
        self.tool(harness.require_program("tpm2_flushcontext"), "-t")
        self.tool(harness.require_program("tpm2_flushcontext"), "-s")


def tpm2_openssl(swtpm, *args):
    return swtpm.tool(harness.require_program("openssl"), *args[:1], "-provider", "tpm2", "-provider", "default",
                      *args[1:])


class SwtpmAgentCase(harness.AgentTestCase):
    """An agent next to a swtpm of its own (cls.swtpm, killed after the agent stops), ESYS's
    log off, its keyward.toml (cls.config) the text agent_config() gives once swtpm runs."""

    @classmethod
    def agent_config(cls):
        return f'[tokens.tpm]\nkind = "tpm"\ntcti = "{cls.swtpm.tcti}"\n'

    @classmethod
    def make_agent(cls):
        cls.swtpm = Swtpm(cls.tmp.mkdir("swtpm"))
        cls.config = cls.tmp.write("keyward.toml", cls.agent_config())
        return harness.Agent(cls.tmp, config=cls.config, env={"TSS2_LOG": "all+NONE"})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.swtpm.kill()


class TpmAgentTest(SwtpmAgentCase):
    def create(self, name, key_type="ec-p256"):
        return self.agent.cli("keys", "create", name, "--type", key_type, "--token", "tpm", json=True).data

    def sign_and_verify(self, name, scheme="ecdsa_secp256r1_sha256", digest="sha256", extra=()):
        msg = self.tmp.write(f"{name}-msg.txt", f"signed by {name} in a TPM\n")
        sig = self.tmp.join(f"{name}.sig")
        pub = self.agent.pubkey(name, self.tmp.join(f"{name}.pub.pem"))
        self.assertIn("BEGIN PUBLIC KEY", pub)
        self.agent.cli("sign", name, "--scheme", scheme, "--in", msg, "--out", sig)
        out = harness.openssl("dgst", f"-{digest}", "-verify", self.tmp.join(f"{name}.pub.pem"),
                              "-signature", sig, *extra, msg)
        self.assertIn("Verified OK", out.stdout)

    def test_create_sign_csr(self):
        key = self.create("tpm-ec")
        self.assertEqual(key["token"], "tpm")
        self.assertEqual(key["type"], "ec-p256")
        attrs = {a["name"]: a["value"] for a in key["attributes"]}
        for a in ("fixedTPM", "fixedParent", "sensitiveDataOrigin", "userWithAuth", "sign"):
            self.assertEqual(attrs.get(a), "true", a)
        blob = os.path.join(self.agent.state_dir, "tpm", "tpm", "tpm-ec.pem")
        with open(blob) as f:
            self.assertTrue(f.read().startswith("-----BEGIN TSS2 PRIVATE KEY-----"))
        self.assertEqual(os.stat(blob).st_mode & 0o777, 0o600)
        self.sign_and_verify("tpm-ec")

        csr = self.agent.csr("tpm-ec", self.tmp.join("tpm-ec.csr"), sans=["dns:tpm.example"])
        out = harness.openssl("req", "-in", csr, "-noout", "-verify", "-text")
        self.assertIn("verify OK", out.stdout + out.stderr)
        self.assertIn("DNS:tpm.example", out.stdout)

        # Listed after a restart of the agent, from the key directory.
        self.agent.restart()
        names = [k["name"] for k in self.agent.cli("keys", "list", json=True).data["keys"]]
        self.assertIn("tpm-ec", names)
        self.sign_and_verify("tpm-ec")

    def test_rsa_pss_for_tls13(self):
        key = self.create("tpm-rsa", "rsa-2048")
        attrs = {a["name"]: a["value"] for a in key["attributes"]}
        self.assertEqual(attrs.get("tls13_rsa_pss"), "ok")
        self.assertIn("rsa_pss_rsae_sha256", key["schemes"])
        self.sign_and_verify("tpm-rsa", "rsa_pss_rsae_sha256", "sha256",
                             ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"])
        self.sign_and_verify("tpm-rsa", "rsa_pkcs1_sha384", "sha384")

    def test_tpm2_openssl_reads_our_blob(self):
        self.create("tpm-interop")
        ours = self.agent.pubkey("tpm-interop")
        blob = os.path.join(self.agent.state_dir, "tpm", "tpm", "tpm-interop.pem")
        theirs = tpm2_openssl(self.swtpm, "pkey", "-in", blob, "-pubout").stdout
        self.swtpm.flush_transients()
        self.assertEqual(ours, theirs)
        self.sign_and_verify("tpm-interop")  # the agent reloads what tpm2_flushcontext took away

    def test_import_key_made_by_tpm2_openssl(self):
        made = self.tmp.join("ossl-made.pem")
        tpm2_openssl(self.swtpm, "genpkey", "-algorithm", "EC", "-pkeyopt", "group:P-256", "-out", made)
        theirs = tpm2_openssl(self.swtpm, "pkey", "-in", made, "-pubout").stdout
        self.swtpm.flush_transients()
        key = self.agent.cli("keys", "import", "imported", "--tpm-key", made, "--token", "tpm", json=True).data
        self.assertEqual(key["name"], "imported")
        self.assertEqual(key["token"], "tpm")
        self.assertEqual(self.agent.pubkey("imported"), theirs)
        self.sign_and_verify("imported")
        # The name is taken now; a file that is no TPM key is refused clearly.
        again = self.agent.cli("keys", "import", "imported", "--tpm-key", made, "--token", "tpm", check=False)
        self.assertNotEqual(again.rc, 0)
        junk = self.tmp.write("junk.pem", "-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n")
        bad = self.agent.cli("keys", "import", "junk", "--tpm-key", junk, "--token", "tpm", check=False)
        self.assertNotEqual(bad.rc, 0)
        self.assertIn("TSS2 PRIVATE KEY", bad.stderr)

    def test_mtls_with_tpm_key_through_provider(self):
        ca = harness.TestCA(self.tmp.join("ca"))
        cases = [  # key type, s_client option, s_server options, protocol
            ("ec-p256", "-tls1_3", [], "TLSv1.3"),
            ("ec-p256", "-tls1_2", [], "TLSv1.2"),
            ("rsa-2048", "-tls1_3", ["-client_sigalgs", "rsa_pss_rsae_sha256"], "TLSv1.3"),
            ("rsa-2048", "-tls1_2", ["-client_sigalgs", "RSA+SHA256"], "TLSv1.2"),
        ]
        for key_type in ("ec-p256", "rsa-2048"):
            name = f"tpm-tls-{key_type}"
            self.create(name, key_type)
            csr = self.agent.csr(name, self.tmp.join(f"{name}.csr"))
            ca.issue_client_cert(csr, self.tmp.join(f"{name}.crt"))
        for key_type, version, server_extra, protocol in cases:
            name = f"tpm-tls-{key_type}"
            with self.subTest(key=key_type, protocol=protocol), ph.www_server(ca, server_extra) as server:
                before = self.agent.signatures()
                result = ph.s_client(server.port, ca.cert, self.tmp.join(f"{name}.crt"), f"keyward:{name}",
                                     extra=[*ph.provider_args(), version],
                                     env={"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None})
                ph.assert_handshake_used_agent(self, self.agent, before, result, name, protocol)

    def test_swtpm_restart_under_the_agent(self):
        self.create("tpm-restart")
        self.sign_and_verify("tpm-restart")
        self.swtpm.restart()
        self.sign_and_verify("tpm-restart")
        self.swtpm.kill()
        down = self.agent.cli("sign", "tpm-restart", "--scheme", "ecdsa_secp256r1_sha256",
                              "--digest", "00" * 32, check=False)
        self.assertEqual(down.rc, harness.EXIT_DEVICE, down.describe())
        self.assertAgentAlive()
        self.swtpm.start()
        self.sign_and_verify("tpm-restart")

    def test_ten_keys_through_the_agent(self):
        names = [f"tpm-many-{i}" for i in range(10)]
        for n in names:
            self.create(n)
        for _ in range(2):
            for n in names:
                self.agent.cli("sign", n, "--scheme", "ecdsa_secp256r1_sha256", "--digest", "ab" * 32)
        out = self.swtpm.tool(harness.require_program("tpm2_getcap"), "handles-transient").stdout
        self.assertLessEqual(out.count("0x80"), 1, out)


class TpmLateTest(SwtpmAgentCase):
    """The agent starts while its TPM is not there yet, and uses it once it appears."""

    @classmethod
    def agent_config(cls):
        cls.swtpm.kill()  # before the agent starts
        return super().agent_config()

    def token_state(self):
        tokens = self.agent.cli("status", json=True).data["tokens"]
        return {t["name"]: t["state"] for t in tokens}.get("tpm")

    def test_tpm_appears_after_the_agent(self):
        failed = self.agent.cli("keys", "create", "late", "--type", "ec-p256", "--token", "tpm", check=False)
        self.assertEqual(failed.rc, harness.EXIT_DEVICE, failed.describe())
        self.assertAgentAlive()
        self.swtpm.start()
        key = self.agent.cli("keys", "create", "late", "--type", "ec-p256", "--token", "tpm", json=True).data
        self.assertEqual(key["token"], "tpm")
        self.agent.cli("sign", "late", "--scheme", "ecdsa_secp256r1_sha256", "--digest", "cd" * 32)
        self.assertEqual(self.token_state(), "present")


class TpmAuthTest(SwtpmAgentCase):
    """A TPM token with auth_file: keys get that auth value; a wrong one is refused clearly."""

    @classmethod
    def agent_config(cls):
        cls.auth = cls.tmp.write("tpm.auth", "s3cret value\n", mode=0o600)
        return super().agent_config() + f'auth_file = "{cls.auth}"\n'

    def sign(self, check=True):
        return self.agent.cli("sign", "guarded", "--scheme", "ecdsa_secp256r1_sha256", "--digest", "ef" * 32,
                              check=check)

    def test_right_and_wrong_auth(self):
        key = self.agent.cli("keys", "create", "guarded", "--type", "ec-p256", "--token", "tpm", json=True).data
        attrs = {a["name"]: a["value"] for a in key["attributes"]}
        self.assertEqual(attrs["emptyAuth"], "false")
        self.sign()
        with open(self.auth, "w") as f:
            f.write("not the value\n")
        for _ in range(3):
            refused = self.sign(check=False)
            self.assertEqual(refused.rc, harness.EXIT_DEVICE, refused.describe())
            self.assertIn("TPM_RC_AUTH_FAIL", refused.stderr)
            self.assertNotIn("not the value", refused.stderr + self.agent.log_text())
        self.assertAgentAlive()
        with open(self.auth, "w") as f:
            f.write("s3cret value\n")
        self.sign()


class SealedEmbeddedPinTest(SwtpmAgentCase):
    """seal_embedded_pin: the embedded SoftHSM2 token's user PIN is sealed to the TPM, never
    written in clear; the agent unseals it at each start; a copy of the state directory
    next to another TPM cannot open the token; a PIN already in user.pin is sealed and the
    file removed."""

    @classmethod
    def agent_config(cls):
        return f'[agent]\nseal_embedded_pin = "{cls.swtpm.tcti}"\n'

    def sign(self, agent, name):
        digest = hashlib.sha256(name.encode()).hexdigest()
        return agent.cli("sign", name, "--scheme", "ecdsa_secp256r1_sha256", "--digest", digest, "--out", os.devnull)

    def test_sealed_pin_survives_restarts_and_is_never_in_clear(self):
        state = self.agent.state_dir
        self.assertFalse(os.path.exists(os.path.join(state, "user.pin")), "the PIN was written in clear")
        sealed = os.path.join(state, "user.pin.sealed")
        self.assertEqual(os.stat(sealed).st_mode & 0o777, 0o600)
        self.agent.create_key("sealed-web", "ec-p256")
        self.sign(self.agent, "sealed-web")
        self.agent.restart()
        self.sign(self.agent, "sealed-web")
        self.assertIn("sealed", self.agent.log_text())

    def test_a_copy_of_the_state_directory_is_useless_with_another_tpm(self):
        self.agent.create_key("copied", "ec-p256")
        copy = self.tmp.join("stolen-state")
        shutil.copytree(self.agent.state_dir, copy, symlinks=True,
                        ignore=shutil.ignore_patterns("agent.sock"))
        other_tpm = Swtpm(self.tmp.mkdir("other-swtpm"))
        try:
            config = self.tmp.write("other.toml", f'[agent]\nseal_embedded_pin = "{other_tpm.tcti}"\n')
            thief = harness.Agent(self.tmp, name="thief", state_dir=copy, config=config,
                                  env={"TSS2_LOG": "all+NONE"})
            proc = thief.spawn()
            rc = proc.wait(timeout=60)
            self.assertNotEqual(rc, 0)
            log = thief.log_text()
            self.assertIn("cannot unseal the embedded token's PIN", log)
            self.assertIn("another TPM", log)
        finally:
            other_tpm.kill()

    def test_a_pin_in_user_pin_is_sealed_and_the_file_removed(self):
        plain = harness.Agent(self.tmp, name="plain", config=self.tmp.write("plain.toml",
                                                                              '[agent]\nseal_embedded_pin = "no"\n'))
        plain.start()
        plain.create_key("older", "ec-p256")
        plain.stop()
        pin_file = os.path.join(plain.state_dir, "user.pin")
        self.assertTrue(os.path.exists(pin_file))
        plain.config = self.config
        plain.env["TSS2_LOG"] = "all+NONE"
        plain.start()
        try:
            self.assertFalse(os.path.exists(pin_file), "user.pin stayed after sealing")
            self.assertTrue(os.path.exists(os.path.join(plain.state_dir, "user.pin.sealed")))
            self.sign(plain, "older")
        finally:
            plain.stop()


if __name__ == "__main__":
    harness.main()
