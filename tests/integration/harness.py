"""Harness for keyward's integration tests: a real keywardd on a SoftHSM2 token in a temp dir.

Every integration test (tests/integration, tests/provider) imports this module. Its API is
stable; extend it rather than changing what exists. Python 3 standard library only.

Environment (set by meson for every registered test):
    KEYWARD_BIN_DIR     the build directory root (keywardd at agent/keywardd, CLI at cli/keyward)
    KEYWARD_SOURCE_DIR  the source tree root
    KEYWARD_KEEP_TMP=1  optional: keep temporary directories (their paths are printed)

Overview:
    require_program(name) -> str         absolute path; FAILS the test run when missing (never skips)
    keywardd_path(), cli_path()          the binaries under test (checked to exist)
    run(argv, ...) -> Completed          subprocess with a timeout and readable failure messages
    openssl(*args, ...) -> Completed     run(["openssl", *args])
    free_port() -> int                   a TCP port on 127.0.0.1 that was free a moment ago
    TempDir(prefix)                      temp directory, removed by cleanup() / on context exit
    Agent(tmp, ...)                      keywardd in embedded mode: start/stop/restart/reload,
                                         cli(), signatures(), create_key(), pubkey(), key_ref(),
                                         csr(), issue_client_cert(), log access, pkcs11_tool()
    CliResult                            what Agent.cli() returns (rc, stdout, stderr, data)
    TestCA(directory)                    an openssl software CA: client certs from CSRs, server certs
    SServer(cert, key, ca, ...)          `openssl s_server` requiring a client certificate
    AgentTestCase                        unittest base class with one agent per test class
    frame()/tlv()/recv_frame()           raw wire-protocol helpers (docs/protocol.md)
    main()                               unittest.main() that prints agent logs of failed tests
                                         and exits non-zero when anything failed

Importing from another test folder (e.g. tests/provider/test_x.py):
    sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
    import harness

Conventions: every helper raises AssertionError (a test failure, with the command, exit
code, output and the agent's log tail) instead of returning a silent error.
"""

import errno
import json as jsonlib
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
NOBODY_UID = 65534

# CLI exit codes (README / common brief).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4
EXIT_NO_SUCH_KEY = 5
EXIT_DEVICE = 6

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")

# Scheme name -> (openssl digest name, family). Family is "ecdsa", "pkcs1" or "pss".
SCHEMES = {
    "ecdsa_secp256r1_sha256": ("sha256", "ecdsa"),
    "ecdsa_secp384r1_sha384": ("sha384", "ecdsa"),
    "rsa_pkcs1_sha256": ("sha256", "pkcs1"),
    "rsa_pkcs1_sha384": ("sha384", "pkcs1"),
    "rsa_pkcs1_sha512": ("sha512", "pkcs1"),
    "rsa_pss_rsae_sha256": ("sha256", "pss"),
    "rsa_pss_rsae_sha384": ("sha384", "pss"),
    "rsa_pss_rsae_sha512": ("sha512", "pss"),
}
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def schemes_for(key_type):
    """The schemes a key of `key_type` ("ec-p256", "rsa-2048", ...) must support."""
    if key_type == "ec-p256":
        return ["ecdsa_secp256r1_sha256"]
    if key_type == "ec-p384":
        return ["ecdsa_secp384r1_sha384"]
    return [s for s, (_, fam) in SCHEMES.items() if fam in ("pkcs1", "pss")]


# ---- programs -----------------------------------------------------------------------------

def require_program(name):
    """Absolute path of `name` (a program on PATH or a path). Raises AssertionError when
    missing: a needed component that is absent is a failure, never a skip."""
    path = name if os.sep in name else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise AssertionError(f"required program {name!r} is not installed or not executable")
    return os.path.abspath(path)


def bin_dir():
    """The build directory root, from KEYWARD_BIN_DIR (or ./build when run by hand)."""
    d = os.environ.get("KEYWARD_BIN_DIR")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        d = os.path.join(here, "..", "..", "build")
    return os.path.abspath(d)


def source_dir():
    """The source tree root, from KEYWARD_SOURCE_DIR (or derived from this file)."""
    d = os.environ.get("KEYWARD_SOURCE_DIR")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    return os.path.abspath(d)


def keywardd_path():
    return require_program(os.path.join(bin_dir(), "agent", "keywardd"))


def cli_path():
    return require_program(os.path.join(bin_dir(), "cli", "keyward"))


class Completed:
    """A finished process: argv, rc, stdout/stderr (text, undecodable bytes replaced),
    stdout_bytes/stderr_bytes (raw)."""

    def __init__(self, argv, rc, stdout_bytes, stderr_bytes):
        self.argv = list(argv)
        self.rc = rc
        self.stdout_bytes = stdout_bytes
        self.stderr_bytes = stderr_bytes
        self.stdout = stdout_bytes.decode("utf-8", "replace")
        self.stderr = stderr_bytes.decode("utf-8", "replace")

    @property
    def returncode(self):
        return self.rc

    def describe(self):
        return (f"$ {' '.join(self.argv)}\nexit code {self.rc}\n"
                f"--- stdout ---\n{_clip(self.stdout)}\n--- stderr ---\n{_clip(self.stderr)}")


def _clip(text, limit=4000):
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def run(argv, *, input=None, env=None, check=True, timeout=120, cwd=None, user=None, context=None):
    """Runs argv to completion. `input` may be bytes or str. `env` entries are added to (not
    substituted for) the current environment; a None value removes a variable. `user` (a
    uid) runs it through setpriv with that uid/gid and no supplementary groups. With
    check=True a non-zero exit raises AssertionError; `context` (a callable returning text,
    e.g. an agent's log tail) is appended to that message."""
    argv = [str(a) for a in argv]
    if user is not None:
        argv = [require_program("setpriv"), f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] + argv
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    if isinstance(input, str):
        input = input.encode()
    try:
        p = subprocess.run(argv, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=cwd,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        extra = ("\n" + context()) if context else ""
        raise AssertionError(f"$ {' '.join(argv)}\ntimed out after {timeout}s\n--- stdout ---\n{_clip(out)}"
                             f"\n--- stderr ---\n{_clip(err)}{extra}") from None
    done = Completed(argv, p.returncode, p.stdout, p.stderr)
    if check and done.rc != 0:
        extra = ("\n" + context()) if context else ""
        raise AssertionError("command failed:\n" + done.describe() + extra)
    return done


def openssl(*args, input=None, check=True, timeout=120, cwd=None):
    """Runs the openssl command line tool (see run())."""
    return run([require_program("openssl"), *args], input=input, check=check, timeout=timeout, cwd=cwd)


def free_port():
    """A TCP port on 127.0.0.1 that was free when asked (bind to 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it is truthy (returns its value) or `timeout` seconds pass
    (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def end_process(proc, grace=10):
    """Stops a server the test started: SIGTERM, then SIGKILL if it is still there after
    `grace` seconds. A process that already ended is left alone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(port, proc, what, log=lambda: "", timeout=30, host="127.0.0.1"):
    """Waits until something accepts TCP connections on host:port, failing at once (with
    `log()`) if `proc`, the server that should, has exited."""
    def accepts():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log()[-3000:]}")
        with socket.socket() as s:
            return s.connect_ex((host, port)) == 0
    if not wait_until(accepts, timeout):
        raise AssertionError(f"{what} does not accept connections on {host}:{port} after {timeout} s")


# ---- temporary directories --------------------------------------------------------------

_open_tempdirs = []


class TempDir:
    """A private temporary directory (mode 0700) removed by cleanup(). Usable as a context
    manager. KEYWARD_KEEP_TMP=1 keeps it (and prints where)."""

    def __init__(self, prefix="keyward-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        _open_tempdirs.append(self)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def write(self, name, content, mode=0o644):
        """Writes `content` (str or bytes) to a file in the directory; returns its path."""
        path = self.join(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        return path

    def mkdir(self, name, mode=0o700):
        path = self.join(name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        return path

    def public_dir(self, name, mode=0o777):
        """A subdirectory that other uids (e.g. 65534) can reach: the temp root becomes
        traversable (0711) and the subdirectory gets `mode` (default world-writable)."""
        os.chmod(self.path, 0o711)
        return self.mkdir(name, mode)

    def cleanup(self):
        if self in _open_tempdirs:
            _open_tempdirs.remove(self)
        if os.environ.get("KEYWARD_KEEP_TMP") == "1":
            print(f"[harness] keeping {self.path}", file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


# ---- the agent ----------------------------------------------------------------------------

class CliResult(Completed):
    """Result of Agent.cli(): rc, stdout, stderr, stdout_bytes, and `data` (the parsed JSON
    of stdout when the call used json=True, else None)."""

    data = None


_agents = []  # every Agent whose log still exists, for failure reports


class Agent:
    """keywardd in embedded mode (its own SoftHSM2 token in `state_dir`).

    Agent(tmp, name="agent", state_dir=None, socket=None, socket_mode=None, config=None,
          log_level="debug", extra_args=(), env=None)
      tmp         a TempDir; defaults live under it
      state_dir   default tmp/<name>-state (created by keywardd, mode 0700)
      socket      default <state_dir>/agent.sock. Other uids cannot reach that path (the
                  state dir is private); use tmp.public_dir(...) for a shared socket.
      socket_mode int (e.g. 0o666) or str ("0666") for --socket-mode
      config      path of a TOML file for --config
      extra_args  more keywardd arguments

    Attributes: state_dir, socket, log_path, proc (subprocess.Popen or None), pid.
    The log (stderr) of every start is appended to log_path.
    """

    def __init__(self, tmp, name="agent", state_dir=None, socket=None, socket_mode=None, config=None,
                 log_level="debug", extra_args=(), env=None):
        self.tmp = tmp
        self.name = name
        self.state_dir = state_dir or tmp.join(f"{name}-state")
        self.socket = socket or os.path.join(self.state_dir, "agent.sock")
        if isinstance(socket_mode, int):
            socket_mode = "%04o" % socket_mode
        self.socket_mode = socket_mode
        self.config = config
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.log_path = tmp.join(f"{name}.log")
        self.proc = None
        self.exit_codes = []  # of every stop()/wait, in order
        _agents.append(self)

    # -- process control --

    def argv(self):
        args = [keywardd_path(), "--state-dir", self.state_dir, "--socket", self.socket]
        if self.socket_mode:
            args += ["--socket-mode", self.socket_mode]
        if self.config:
            args += ["--config", self.config]
        if self.log_level:
            args += ["--log-level", self.log_level]
        return args + self.extra_args

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self):
        """Starts keywardd without waiting for readiness; returns the Popen."""
        assert not self.alive(), "agent already running"
        env = dict(os.environ)
        env.pop("SOFTHSM2_CONF", None)  # the agent chooses its own token store
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            log.write(f"---- harness: starting {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         start_new_session=True)
        return self.proc

    def _socket_accepts(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1)
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def start(self, timeout=60):
        """Starts keywardd and waits until its socket accepts connections. Fails (with the
        log) if it exits or is not ready within `timeout` seconds. Returns self."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.exit_codes.append(rc)
                raise AssertionError(f"keywardd exited with {rc} during start\n{self.log_tail()}")
            if self._socket_accepts():
                return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"keywardd not ready on {self.socket} after {timeout}s\n{self.log_tail()}")

    def wait(self, timeout=30):
        """Waits for the process to exit; returns its exit code (fails on timeout)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"keywardd did not exit within {timeout}s\n{self.log_tail()}") from None
        self.exit_codes.append(rc)
        return rc

    def signal(self, signo):
        assert self.alive(), f"keywardd is not running\n{self.log_tail()}"
        os.kill(self.proc.pid, signo)

    def stop(self, timeout=30, expect_exit=0):
        """SIGTERM, wait, and assert the exit code is `expect_exit` (None: any). Returns it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.wait(timeout)
        if expect_exit is not None and rc != expect_exit:
            raise AssertionError(f"keywardd exited with {rc} on SIGTERM, expected {expect_exit}\n{self.log_tail()}")
        return rc

    def kill(self):
        """SIGKILL if still running (for cleanup after a failure)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout=60):
        """stop() (asserting exit 0) then start() on the same state dir and socket."""
        self.stop()
        return self.start(timeout)

    def reload(self, timeout=30):
        """Sends SIGHUP and waits until the log says the reload finished. Returns True when
        the configuration was reloaded, False when the agent reported that it failed."""
        mark = self.log_size()
        self.signal(signal.SIGHUP)
        line = self.wait_for_log(r"configuration reloaded|reload failed", timeout=timeout, since=mark)
        return "reload failed" not in line

    # -- log --

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        """Log text written after byte offset `mark` (from log_size())."""
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        return f"--- {self.name} log ({self.log_path}), last {min(lines, len(text))} lines ---\n" + \
            "\n".join(text[-lines:])

    def wait_for_log(self, pattern, timeout=15, since=0):
        """Waits for a log line matching regex `pattern` after offset `since`; returns it."""
        rx = re.compile(pattern)

        def find():
            for line in self.log_since(since).splitlines():
                if rx.search(line):
                    return line
            return None

        line = wait_until(find, timeout)
        if not line:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s\n{self.log_tail()}")
        return line

    # -- clients --

    def cli(self, *args, json=False, check=True, env=None, user=None, input=None, timeout=120):
        """Runs the keyward CLI against this agent (KEYWARD_SOCKET points at it).
        json=True appends --json and parses stdout into result.data. check=True fails on a
        non-zero exit (message with the output and the agent's log tail). user=65534 runs
        it through setpriv as that uid. Returns a CliResult."""
        argv = [cli_path(), *[str(a) for a in args]]
        if json:
            argv.append("--json")
        full_env = {"KEYWARD_SOCKET": self.socket}
        full_env.update(env or {})
        done = run(argv, env=full_env, check=check, user=user, input=input, timeout=timeout,
                   context=self.log_tail)
        result = CliResult(done.argv, done.rc, done.stdout_bytes, done.stderr_bytes)
        if json and done.rc == 0:
            try:
                result.data = jsonlib.loads(done.stdout)
            except ValueError as e:
                if check:
                    raise AssertionError(f"--json output is not JSON ({e}):\n{done.describe()}") from None
        return result

    def signatures(self):
        """The agent's total signature counter (`keyward status --json` field "signatures")."""
        data = self.cli("status", json=True).data
        if not isinstance(data, dict) or "signatures" not in data:
            raise AssertionError(f"`keyward status --json` has no 'signatures' field: {data!r}")
        return int(data["signatures"])

    def create_key(self, name, key_type="ec-p256"):
        """`keyward keys create NAME --type TYPE`; returns the CliResult."""
        return self.cli("keys", "create", name, "--type", key_type, timeout=300)

    def pubkey(self, name, out_path=None):
        """The key's public key as PEM text (`keyward keys pubkey NAME`); also written to
        `out_path` when given."""
        pem = self.cli("keys", "pubkey", name).stdout
        if "-----BEGIN PUBLIC KEY-----" not in pem:
            raise AssertionError(f"`keyward keys pubkey {name}` printed no PEM public key:\n{pem}")
        if out_path:
            with open(out_path, "w") as f:
                f.write(pem)
        return pem

    def key_ref(self, name, out_path):
        """`keyward keys ref NAME --out FILE`: the key-reference PEM ("KEYWARD KEY") that
        OpenSSL loads through the keyward provider. Returns out_path."""
        self.cli("keys", "ref", name, "--out", out_path)
        return out_path

    def csr(self, name, out_path, subject=None, sans=()):
        """`keyward csr NAME --subject S [--san ...] --out FILE` (subject default /CN=NAME;
        sans like "dns:localhost", "ip:127.0.0.1"). Returns out_path."""
        args = ["csr", name, "--subject", subject or f"/CN={name}"]
        for san in sans:
            args += ["--san", san]
        self.cli(*args, "--out", out_path)
        return out_path

    def issue_client_cert(self, ca, name, out_path, subject=None, sans=()):
        """A client certificate for agent key `name`: a CSR signed by the device key, issued
        by `ca` (a TestCA). Returns out_path (PEM)."""
        csr = self.csr(name, os.path.splitext(out_path)[0] + ".csr", subject, sans)
        return ca.issue_client_cert(csr, out_path)

    # -- the embedded token, seen from outside --

    def softhsm_conf(self):
        return os.path.join(self.state_dir, "softhsm2.conf")

    def user_pin(self):
        with open(os.path.join(self.state_dir, "user.pin")) as f:
            return f.readline().strip()

    def pkcs11_tool(self, *args, login=True, check=True):
        """Runs OpenSC's pkcs11-tool on the agent's embedded SoftHSM2 token (an independent
        reader of what the agent created). login=True adds --login --pin <user PIN>."""
        argv = [require_program("pkcs11-tool"), "--module", SOFTHSM_MODULE]
        if login:
            argv += ["--login", "--pin", self.user_pin()]
        return run(argv + list(args), env={"SOFTHSM2_CONF": self.softhsm_conf()}, check=check,
                   context=self.log_tail)

    def forget(self):
        """Drops this agent from failure reports (after its temp dir is gone)."""
        if self in _agents:
            _agents.remove(self)


class TempDirTestCase(unittest.TestCase):
    """Base class: one TempDir (cls.tmp, named after the class) per test class, made before
    the classmethod prepare() runs and removed after the class's tests, or at once when
    prepare() fails (then the class's tests do not run)."""

    @classmethod
    def prepare(cls):
        pass

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = TempDir(f"keyward-{cls.__name__}-")
        try:
            cls.prepare()
        except BaseException:
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.tmp.cleanup()
        finally:
            super().tearDownClass()


def parse_checks(output):
    """{name: value} of the "CHECK name: value" lines a script run inside a container prints
    (tests/boot/e2e_inside.sh, tests/packaging/install_and_boot.sh); a later line wins."""
    return dict(re.findall(r"(?m)^CHECK ([\w-]+): (.*)$", output))


class AgentTestCase(TempDirTestCase):
    """Base class: one TempDir (cls.tmp) and one started Agent (cls.agent) per test class.
    Subclasses may set `agent_options` (keyword arguments for Agent) or override
    make_agent(). tearDownClass stops the agent (asserting exit 0) and removes the dir."""

    agent_options = {}

    @classmethod
    def make_agent(cls):
        return Agent(cls.tmp, **cls.agent_options)

    @classmethod
    def prepare(cls):
        cls.agent = cls.make_agent()
        cls.agent.start()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.agent.alive():
                cls.agent.stop()
        finally:
            cls.agent.kill()
            cls.agent.forget()
            super().tearDownClass()

    def assertAgentAlive(self, agent=None):
        agent = agent or self.agent
        if not agent.alive():
            self.fail(f"keywardd died (exit code {agent.proc.returncode})\n{agent.log_tail()}")


# ---- an openssl software CA and s_server --------------------------------------------------

class TestCA:
    """A throw-away software CA made with the openssl tool in `directory` (created).
    Attributes: dir, key (root key path), cert (root certificate path, PEM).
    Methods:
      issue_client_cert(csr_path, out_path=None, days=2) -> path: signs a CSR into a client
          certificate (clientAuth EKU, digitalSignature, not a CA; subject and SANs of the CSR)
      server_cert(name="server") -> (cert_path, key_path): an EC P-256 server certificate for
          127.0.0.1 and localhost (serverAuth EKU)
      software_client(name="client") -> (cert_path, key_path): a client cert for a software key
    """

    def __init__(self, directory, subject="/CN=keyward test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "ca.crt")
        self._serial = 1
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.key)
        openssl("req", "-new", "-x509", "-key", self.key, "-out", self.cert, "-days", "2", "-subj", subject,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-addext", "subjectKeyIdentifier=hash")

    def _sign(self, csr, out, extensions, days):
        ext = os.path.join(self.dir, f"ext-{self._serial}.cnf")
        with open(ext, "w") as f:
            f.write("[v3]\n" + extensions)
        self._serial += 1
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-set_serial",
                str(1000 + self._serial), "-days", str(days), "-extfile", ext, "-extensions", "v3",
                "-copy_extensions", "copy", "-out", out)
        return out

    def issue_client_cert(self, csr_path, out_path=None, days=2):
        out_path = out_path or os.path.splitext(csr_path)[0] + ".crt"
        return self._sign(csr_path, out_path,
                          "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n", days)

    def _software_key_csr(self, name, subject, extra):
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("req", "-new", "-key", key, "-subj", subject, *extra, "-out", csr)
        return key, csr

    def server_cert(self, name="server"):
        key, csr = self._software_key_csr(name, "/CN=localhost", [])
        cert = self._sign(csr, os.path.join(self.dir, f"{name}.crt"),
                          "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n", 2)
        return cert, key

    def software_client(self, name="client"):
        key, csr = self._software_key_csr(name, f"/CN={name}", [])
        return self.issue_client_cert(csr, os.path.join(self.dir, f"{name}.crt")), key


# The CA helper issuer script the lifecycle tests enrol with (signs with a TestCA; a file
# `mode` in its HELPER_DIR holding "unreachable" makes it fail like a CA that is down).
CA_HELPER = os.path.join(source_dir(), "tests", "integration", "short_ca_helper.sh")


def helper_identity_toml(ca, helper_dir, lifetime=86400, name="web"):
    """A TOML `[identities.<name>]` (subject /CN=<name>.example, its DNS SAN, trust anchors
    `ca`, retried every second) enrolled by CA_HELPER signing with the TestCA `ca`, its
    certificates living `lifetime` seconds. helper_dir is the helper's working directory."""
    return f"""
[identities.{name}]
subject = "/CN={name}.example"
sans = ["dns:{name}.example"]
trust_anchors = "{ca.cert}"
retry_min = "1s"
[identities.{name}.issuer]
kind = "helper"
command = ["{CA_HELPER}"]
environment = {{ HELPER_DIR = "{helper_dir}", CA_CERT = "{ca.cert}", CA_KEY = "{ca.key}", LIFETIME = "{lifetime}" }}
"""


class SServer:
    """`openssl s_server -Verify 1 -verify_return_error -accept 127.0.0.1:PORT` with the
    given certificate, key and CA file (the CA that must have issued the client's
    certificate). A context manager: on entry it starts the server and waits until it
    listens; on exit it stops it. extra_args are appended (e.g. ["-www"], ["-tls1_3"]).
    Attributes: port, proc. output() returns everything it printed so far (stdout+stderr),
    which includes the verified client certificate's subject and errors."""

    def __init__(self, cert, key, ca, port=None, extra_args=(), timeout=20):
        self.cert, self.key, self.ca = cert, key, ca
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.proc = None
        self._chunks = []
        self._lock = threading.Lock()
        self._reader = None

    def argv(self):
        return [require_program("openssl"), "s_server", "-Verify", "1", "-verify_return_error",
                "-accept", f"127.0.0.1:{self.port}", "-cert", self.cert, "-key", self.key, "-CAfile", self.ca,
                *self.extra_args]

    def _pump(self):
        while True:
            data = self.proc.stdout.read1(65536) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(1)
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    def output(self):
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=10):
        """Waits until the server's output matches regex `pattern`; returns the match or
        None after `timeout` seconds."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.output()), timeout)

    def __enter__(self):
        # stdin stays an open pipe: without -www, s_server ends a session when stdin hits EOF.
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

        def listening():
            if self.proc.poll() is not None:
                return "exited"
            if "ACCEPT" in self.output():
                return "ready"
            return None

        state = wait_until(listening, self.timeout)
        if state != "ready":
            self.__exit__(None, None, None)
            raise AssertionError(f"openssl s_server did not start ({state or 'timeout'}):\n"
                                 f"$ {' '.join(self.argv())}\n{self.output()}")
        return self

    def __exit__(self, *exc):
        end_process(self.proc)
        if self.proc and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self._reader:
            self._reader.join(timeout=5)


# ---- raw wire protocol (docs/protocol.md) -------------------------------------------------

PROTOCOL_VERSION = 1
RESPONSE_BIT = 0x80
MAX_FRAME = 64 * 1024
OPS = {"hello": 1, "status": 2, "list_keys": 3, "get_key": 4, "sign": 5, "generate_key": 6, "delete_key": 7}
TAGS = {"message": 1, "version": 2, "name": 3, "key_type": 4, "token": 5, "scheme": 6, "digest": 7,
        "signature": 8, "spki": 9}
ERRORS = {"ok": 0, "bad_request": 1, "unsupported_version": 2, "unknown_operation": 3, "no_such_key": 4,
          "access_denied": 5, "device_unavailable": 6, "device_error": 7, "unsupported_scheme": 8,
          "invalid_argument": 9, "key_exists": 10, "busy": 11, "internal": 12, "no_such_token": 13}
SCHEME_CODES = {"ecdsa_secp256r1_sha256": 0x0403, "ecdsa_secp384r1_sha384": 0x0503,
                "rsa_pkcs1_sha256": 0x0401, "rsa_pkcs1_sha384": 0x0501, "rsa_pkcs1_sha512": 0x0601,
                "rsa_pss_rsae_sha256": 0x0804, "rsa_pss_rsae_sha384": 0x0805, "rsa_pss_rsae_sha512": 0x0806}


def tlv(tag, value):
    """One TLV element: u16 tag, u16 length (both big-endian), value (bytes or str)."""
    if isinstance(value, str):
        value = value.encode()
    return struct.pack(">HH", tag, len(value)) + value


def frame(op, request_id, body=b"", version=PROTOCOL_VERSION, status=0):
    """A complete frame: u32 BE length of (header + body), then version u8, op u8,
    status u16 BE, request id u32 BE, then the body."""
    header = struct.pack(">BBHI", version, op, status, request_id)
    return struct.pack(">I", len(header) + len(body)) + header + body


def hello_frame(request_id=1, client="keyward-integration-test"):
    return frame(OPS["hello"], request_id, tlv(TAGS["version"], bytes([PROTOCOL_VERSION])) + tlv(TAGS["name"], client))


def sign_frame(request_id, key, scheme, digest):
    body = tlv(TAGS["name"], key) + tlv(TAGS["scheme"], struct.pack(">H", SCHEME_CODES[scheme])) + \
        tlv(TAGS["digest"], digest)
    return frame(OPS["sign"], request_id, body)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None if not buf else buf
        buf += chunk
    return buf


def recv_frame(sock):
    """Reads one frame. Returns None on a clean EOF before any byte, else a dict with
    version, op, status, request_id, body (bytes) and tlvs (list of (tag, value)).
    Raises AssertionError on a truncated frame. Honours the socket's timeout."""
    prefix = _recv_exact(sock, 4)
    if prefix is None:
        return None
    if len(prefix) < 4:
        raise AssertionError(f"connection closed inside a length prefix: {prefix!r}")
    (length,) = struct.unpack(">I", prefix)
    if length < 8 or length > MAX_FRAME:
        raise AssertionError(f"agent sent a frame length of {length}")
    rest = _recv_exact(sock, length)
    if rest is None or len(rest) < length:
        raise AssertionError(f"agent's frame truncated: wanted {length} bytes, got {len(rest or b'')}")
    version, op, status, request_id = struct.unpack(">BBHI", rest[:8])
    body = rest[8:]
    tlvs = []
    i = 0
    while i + 4 <= len(body):
        tag, n = struct.unpack(">HH", body[i:i + 4])
        tlvs.append((tag, body[i + 4:i + 4 + n]))
        i += 4 + n
    return {"version": version, "op": op, "status": status, "request_id": request_id, "body": body,
            "tlvs": tlvs}


def connect_unix(path, timeout=10):
    """A connected AF_UNIX stream socket with a timeout."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


# ---- running tests ------------------------------------------------------------------------

class _ReportingResult(unittest.TextTestResult):
    """Prints the tail of every live agent's log next to each failure or error."""

    def _report_agents(self):
        for agent in list(_agents):
            if os.path.exists(agent.log_path):
                self.stream.write("\n" + agent.log_tail(60) + "\n")
                self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._report_agents()

    def addError(self, test, err):
        super().addError(test, err)
        self._report_agents()


def main():
    """Runs the unittest cases of the calling module verbosely; exits 1 if any failed or
    errored (or none ran), 0 otherwise. Leftover agents are killed and temp dirs removed."""
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_ReportingResult, stream=sys.stdout)
    program = unittest.main(module="__main__", testRunner=runner, exit=False)
    result = program.result
    for agent in list(_agents):
        agent.kill()
    for tmp in list(_open_tempdirs):
        tmp.cleanup()
    ok = result.wasSuccessful() and result.testsRun > 0
    sys.exit(0 if ok else 1)
