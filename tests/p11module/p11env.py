"""What every keyward-pkcs11.so test needs: a real keywardd on its embedded SoftHSM2 token
with identities whose certificates come from a two-level software CA (root, intermediate),
and the module under test.

    env = P11Env("name")          starts it; env.cleanup() stops and removes everything
    env.module                    path of keyward-pkcs11.so (from meson, or build/)
    env.client_env()              environment for a PKCS#11 consumer (KEYWARD_SOCKET)
    env.ca.cert, env.inter_cert   root and intermediate CA certificates
    env.keys                      {"p11-ec": "ec-p256", "p11-rsa": "rsa-2048", "p11-p384": "ec-p384"}
                                  (the first two have identities and certificates)
"""

import os
import sys

_src = os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(_src, "tests", "integration"))

import harness  # noqa: E402
from harness import Agent, TempDir, TestCA, openssl, require_program, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "ca_helper.sh")
IDENTITIES = {"p11-ec": "ec-p256", "p11-rsa": "rsa-2048"}
BARE_KEYS = {"p11-p384": "ec-p384"}


def module_path():
    path = os.environ.get("KEYWARD_PKCS11_MODULE") or os.path.join(harness.bin_dir(), "p11module",
                                                                    "keyward-pkcs11.so")
    if not os.path.exists(path):
        raise AssertionError(f"the module under test is missing: {path}")
    return path


def consumer_path():
    path = os.environ.get("KEYWARD_P11_CONSUMER") or os.path.join(harness.bin_dir(), "tests", "p11module",
                                                                   "p11_consumer")
    return require_program(path)


class P11Env:
    def __init__(self, name, shared=False, agent_config=""):
        """shared=True: the socket is reachable by uid 65534 (harness.NOBODY_UID), which may
        sign with p11-ec — for consumers that must not run as root (p11-kit reads a user's
        own module files only when the user is not root). agent_config: TOML put before the
        identities (e.g. an [agent] table)."""
        self.shared = shared
        self.agent_config = agent_config
        self.tmp = TempDir(f"keyward-p11-{name}-")
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise

    def _setup(self):
        self.module = module_path()
        self.ca = TestCA(self.tmp.join("ca"))
        cadir = self.tmp.mkdir("helper")
        self.inter_key = os.path.join(cadir, "inter.key")
        self.inter_cert = os.path.join(cadir, "inter.crt")
        inter_csr = os.path.join(cadir, "inter.csr")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.inter_key)
        openssl("req", "-new", "-key", self.inter_key, "-subj", "/CN=keyward test intermediate", "-out", inter_csr)
        ext = self.tmp.write("inter.cnf", "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n"
                             "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
                             "authorityKeyIdentifier=keyid\n")
        openssl("x509", "-req", "-in", inter_csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-set_serial", "77",
                "-days", "2", "-extfile", ext, "-extensions", "v3", "-out", self.inter_cert)
        lines = [self.agent_config] if self.agent_config else []
        for name, key_type in IDENTITIES.items():
            lines += [f"[identities.{name}]", f'key_type = "{key_type}"', f'subject = "/CN={name}"',
                      f'sans = ["dns:{name}.test"]', f'trust_anchors = "{self.ca.cert}"', "auto_enroll = false",
                      f"[identities.{name}.issuer]", 'kind = "helper"', f'command = ["{HELPER}"]',
                      f'environment = {{ P11_CA_DIR = "{cadir}" }}']
        options = {}
        if self.shared:
            lines += ["[keys.p11-ec]", f"allow_users = [{harness.NOBODY_UID}]"]
            options = dict(socket=os.path.join(self.tmp.public_dir("public"), "agent.sock"), socket_mode=0o666)
        config = self.tmp.write("keyward.toml", "\n".join(lines) + "\n")
        self.agent = Agent(self.tmp, config=config, **options)
        self.agent.start()
        for name in IDENTITIES:
            done = self.agent.cli("enroll", name, json=True, timeout=300)
            if done.data["result"]["action"] != "issued":
                raise AssertionError(f"enrolling {name} did not issue a certificate:\n{done.stdout}")
        for name, key_type in BARE_KEYS.items():
            self.agent.create_key(name, key_type)
        self.keys = dict(IDENTITIES, **BARE_KEYS)

    def cert_path(self, name):
        """The identity's certificate in force (PEM), as the agent's store keeps it."""
        return os.path.join(self.agent.state_dir, "identities", name, "current", "cert.pem")

    def client_env(self, **extra):
        env = {"KEYWARD_SOCKET": self.agent.socket}
        env.update(extra)
        return env

    def pubkey(self, name):
        path = self.tmp.join(f"{name}.pub.pem")
        if not os.path.exists(path):
            self.agent.pubkey(name, path)
        return path

    def cleanup(self):
        agent = getattr(self, "agent", None)
        if agent:
            agent.kill()
            agent.forget()
        self.tmp.cleanup()
