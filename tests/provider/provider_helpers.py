"""Helpers shared by the provider/engine tests: where the modules are, openssl.cnf files
that activate them, client keys with certificates, and TLS handshakes with proof.

Builds on tests/integration/harness.py (agent, CLI, CA, s_server)."""

import os
import re
import subprocess
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(_here, "..", "..")),
                                "tests", "integration"))

import harness  # noqa: E402  (path set up above)

HTTP_GET = "GET / HTTP/1.0\r\n\r\n"


def provider_dir():
    return os.path.join(harness.bin_dir(), "provider")


def provider_module():
    """The built keyward.so provider (fails the test when it is missing)."""
    path = os.path.join(provider_dir(), "keyward.so")
    if not os.path.isfile(path):
        raise AssertionError(f"the keyward provider was not built: {path} is missing")
    return path


def engine_module():
    """The built keyward engine (fails the test when it is missing)."""
    path = os.path.join(provider_dir(), "engine", "keyward.so")
    if not os.path.isfile(path):
        raise AssertionError(f"the keyward engine was not built: {path} is missing")
    return path


def provider_args(path=None):
    """openssl command-line options that load keyward (from `path`, default the build tree)
    and then default, the order the issue asks for (keyward must not take over the default
    provider's algorithms)."""
    provider_module()
    return ["-provider-path", path or provider_dir(), "-provider", "keyward", "-provider", "default"]


def write_openssl_cnf(tmp, socket, name="openssl.cnf", keyward_first=False, debug=False, timeout=None):
    """An openssl.cnf that activates the default provider and keyward (default first,
    as docs/openssl.md recommends, unless keyward_first). Returns its path."""
    sections = {
        "default": "[default_sect]\nactivate = 1\n",
        "keyward": (f"[keyward_sect]\nmodule = {provider_module()}\nsocket = {socket}\n"
                    + ("debug = 1\n" if debug else "") + (f"timeout = {timeout}\n" if timeout else "")
                    + "activate = 1\n"),
    }
    order = ["keyward", "default"] if keyward_first else ["default", "keyward"]
    text = ("openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n[provider_sect]\n"
            + "".join(f"{n} = {n}_sect\n" for n in order) + "\n" + "\n".join(sections[n] for n in order))
    return tmp.write(name, text)


def write_engine_cnf(tmp, socket, name="openssl-engine.cnf", with_provider=False):
    """An openssl.cnf that loads and initialises the keyward engine (init = 1: nginx calls
    ENGINE_load_private_key without ENGINE_init) with its SOCKET; with_provider also
    activates the default and keyward providers. Returns its path."""
    init = ["engines = engine_sect"]
    sections = [f"[engine_sect]\nkeyward = keyward_engine_sect\n",
                f"[keyward_engine_sect]\nengine_id = keyward\ndynamic_path = {engine_module()}\n"
                f"SOCKET = {socket}\ninit = 1\n"]
    if with_provider:
        init.append("providers = provider_sect")
        sections += ["[provider_sect]\ndefault = default_sect\nkeyward = keyward_sect\n",
                     "[default_sect]\nactivate = 1\n",
                     f"[keyward_sect]\nmodule = {provider_module()}\nsocket = {socket}\nactivate = 1\n"]
    text = "openssl_conf = openssl_init\n\n[openssl_init]\n" + "\n".join(init) + "\n\n" + "\n".join(sections)
    return tmp.write(name, text)


def engine_env(socket=None):
    """Environment for programs that find the engine by id: OPENSSL_ENGINES points at the
    build tree, KEYWARD_SOCKET at the agent (or removed), no OPENSSL_CONF."""
    engine_module()
    return {"OPENSSL_ENGINES": os.path.dirname(engine_module()), "KEYWARD_SOCKET": socket, "OPENSSL_CONF": None}


class ClientKey:
    """An agent key with a client certificate from `ca`, plus its key-reference file."""

    def __init__(self, agent, ca, tmp, name, key_type):
        self.name = name
        self.key_type = key_type
        agent.create_key(name, key_type)
        csr = tmp.join(f"{name}.csr")
        agent.cli("csr", name, "--subject", f"/CN={name}", "--out", csr)
        self.cert = ca.issue_client_cert(csr, tmp.join(f"{name}.crt"))
        self.keyref = tmp.join(f"{name}.keyref")
        agent.cli("keys", "ref", name, "--out", self.keyref)
        self.uri = f"keyward:{name}"


def s_client(port, ca_file, cert, key, extra=(), env=None, check=False, timeout=60, input=HTTP_GET):
    """`openssl s_client` to 127.0.0.1:port sending an HTTP GET (s_server -www answers
    with a page describing the session and the verified client certificate)."""
    argv = [harness.require_program("openssl"), "s_client", "-connect", f"127.0.0.1:{port}",
            "-CAfile", ca_file, "-verify_return_error", "-cert", cert, "-key", key, "-ign_eof", *extra]
    return harness.run(argv, input=input, env=env, check=check, timeout=timeout)


def www_server(ca, extra=()):
    """s_server -www requiring a client certificate issued by `ca` (harness.SServer)."""
    cert, key = ca.server_cert()
    return harness.SServer(cert, key, ca.cert, extra_args=["-www", *extra])


def assert_handshake_used_agent(test, agent, before, result, subject_cn, protocol=None):
    """The handshake succeeded, the server saw and verified our certificate, and the agent
    signed (its counter moved)."""
    test.assertEqual(result.rc, 0, result.describe() + "\n" + agent.log_tail())
    test.assertIn(f"Subject: CN={subject_cn}", result.stdout,
                  "the server page does not show our client certificate:\n" + result.describe())
    if protocol:
        test.assertRegex(result.stdout, rf"Protocol\s*:\s*{re.escape(protocol)}", result.describe())
    after = agent.signatures()
    test.assertGreater(after, before, "the agent's signature counter did not move: the key was not used")


class LongLivedClient:
    """tests/provider/tls_client.py in a subprocess: one SSLContext, many handshakes."""

    def __init__(self, ca_file, cert, key, env):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls_client.py")
        full_env = dict(os.environ)
        full_env.update({k: v for k, v in env.items() if v is not None})
        for k, v in env.items():
            if v is None:
                full_env.pop(k, None)
        self.proc = subprocess.Popen([harness.require_program("python3"), script, ca_file, cert, key],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=full_env, text=True, bufsize=1)
        self.expect_line("ready")

    def expect_line(self, prefix, timeout=60):
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith(prefix) or time.monotonic() > deadline:
            raise AssertionError(f"tls_client.py said {line!r}, expected {prefix!r}")
        return line

    def connect(self, port, version=""):
        self.proc.stdin.write(f"connect {port} {version}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
