"""keywardd under systemd's protocols, with the real pieces: readiness, status, reload and
watchdog messages received on a real NOTIFY_SOCKET datagram socket; socket activation by
systemd-socket-activate with a client connecting before the agent runs; and the process
hardening (no core dumps, not dumpable) that holds with or without systemd."""

import grp
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import NOBODY_UID, Agent, AgentTestCase, openssl

KEY = "unit"
SCHEME = "ecdsa_secp256r1_sha256"


class NotifyListener:
    """A NOTIFY_SOCKET: collects the datagrams the agent sends, with their arrival times."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []  # (monotonic time, text)

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
                self.messages.append((time.monotonic(), data.decode()))
            except socket.timeout:
                pass

    def wait_for(self, needle, since=0.0, timeout=15):
        """The first message containing `needle` that arrived at or after `since`."""
        end = time.monotonic() + timeout
        while True:
            for t, text in self.messages:
                if t >= since and needle in text:
                    return text
            if time.monotonic() > end:
                break
            self.drain(0.1)
        raise AssertionError(f"no {needle!r} from the agent; got {[m for _, m in self.messages]}")

    def count(self, needle, since):
        return sum(1 for t, text in self.messages if t >= since and needle in text)

    def close(self):
        self.sock.close()


class TestNotify(AgentTestCase):
    """READY=1 with a STATUS line once it serves, RELOADING=1 then READY=1 around SIGHUP,
    WATCHDOG=1 at half the requested interval from the event loop (none while it is stopped),
    STOPPING=1 on SIGTERM."""

    @classmethod
    def make_agent(cls):
        cls.notify = NotifyListener(cls.tmp.join("notify.sock"))
        return Agent(cls.tmp, env={"NOTIFY_SOCKET": cls.notify.path, "WATCHDOG_USEC": "400000"})

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.notify.close()

    def test_ready_status_watchdog_reload_stop(self):
        ready = self.notify.wait_for("READY=1")
        self.assertIn("STATUS=", ready)
        self.assertRegex(ready, r"STATUS=\d+ keys on 1/1 tokens present")

        start = time.monotonic()
        self.notify.drain(2.0)
        pings = self.notify.count("WATCHDOG=1", start)
        self.assertGreaterEqual(pings, 6, "WATCHDOG=1 should come about every 200 ms")
        self.assertLessEqual(pings, 14)

        self.agent.signal(signal.SIGSTOP)
        try:
            time.sleep(0.3)
            stopped_at = time.monotonic()
            self.notify.drain(1.0)
            self.assertEqual(self.notify.count("WATCHDOG=1", stopped_at), 0, "pings from a stopped agent")
        finally:
            self.agent.signal(signal.SIGCONT)
        resumed = time.monotonic()
        self.notify.drain(0.8)
        self.assertGreaterEqual(self.notify.count("WATCHDOG=1", resumed), 2)

        mark = time.monotonic()
        self.agent.signal(signal.SIGHUP)
        self.notify.wait_for("RELOADING=1", since=mark)
        again = self.notify.wait_for("READY=1", since=mark)
        self.assertIn("STATUS=", again)
        reloading = [t for t, m in self.notify.messages if t >= mark and "RELOADING=1" in m]
        readies = [t for t, m in self.notify.messages if t >= mark and "READY=1" in m]
        self.assertLess(reloading[0], readies[0])
        self.assertIn("MONOTONIC_USEC=", [m for t, m in self.notify.messages if "RELOADING=1" in m][0])

        mark = time.monotonic()
        self.agent.stop()
        self.notify.wait_for("STOPPING=1", since=mark)


class TestSocketActivation(AgentTestCase):
    """systemd-socket-activate owns the socket and starts keywardd on the first connection:
    the client that connected before the agent ran is served, and the agent does not remove
    a socket that is not its own."""

    @classmethod
    def make_agent(cls):
        agent = Agent(cls.tmp)
        base = agent.argv
        activator = harness.require_program("systemd-socket-activate")
        agent.argv = lambda: [activator, "-l", agent.socket, "--fdname=agent", "--"] + base()
        os.makedirs(agent.state_dir, mode=0o700, exist_ok=True)
        return agent

    def test_first_client_is_served_and_the_socket_stays(self):
        digest = hashlib.sha256(b"activated").digest()
        self.agent.create_key(KEY, "ec-p256")
        out = self.tmp.join("activated.sig")
        pub = self.tmp.join("unit.pub.pem")
        self.agent.pubkey(KEY, pub)
        msg = self.tmp.write("m.txt", "activated")
        self.agent.cli("sign", KEY, "--scheme", SCHEME, "--in", msg, "--out", out)
        openssl("dgst", "-sha256", "-verify", pub, "-signature", out, msg)
        self.assertIn("serving", self.agent.log_text())
        self.assertTrue(os.path.exists(self.agent.socket))
        self.agent.stop()
        self.assertTrue(os.path.exists(self.agent.socket), "the agent removed systemd's socket")


class TestProcessHardening(AgentTestCase):
    """No core dumps, and not dumpable: another process of the agent's own user cannot read
    its memory (here the agent runs as uid 65534)."""

    @classmethod
    def make_agent(cls):
        public = cls.tmp.public_dir("public")
        home = cls.tmp.public_dir("nobody-home", 0o711)  # traversable, writable by root only
        state = os.path.join(home, "state")
        os.makedirs(state, mode=0o700)
        os.chown(state, NOBODY_UID, NOBODY_UID)
        agent = Agent(cls.tmp, state_dir=state, socket=os.path.join(public, "agent.sock"), socket_mode=0o666)
        base = agent.argv
        setpriv = harness.require_program("setpriv")
        agent.argv = lambda: [setpriv, f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups", "--"] + base()
        return agent

    def test_no_core_dumps(self):
        with open(f"/proc/{self.agent.pid}/limits") as f:
            core = [line for line in f if line.startswith("Max core file size")][0]
        self.assertEqual(core.split()[4:6], ["0", "0"], core)

    def test_same_user_cannot_read_its_memory(self):
        status = open(f"/proc/{self.agent.pid}/status").read()
        self.assertIn(f"Uid:\t{NOBODY_UID}", status)
        # A non-dumpable process's /proc files belong to root, whoever runs it.
        self.assertEqual(os.stat(f"/proc/{self.agent.pid}/mem").st_uid, 0)
        probe = ("import sys\n"
                 "try:\n"
                 f"    open('/proc/{self.agent.pid}/mem', 'rb')\n"
                 "    print('opened')\n"
                 "except PermissionError:\n"
                 "    print('denied')\n")
        done = harness.run([shutil.which("python3"), "-c", probe], user=NOBODY_UID, check=False)
        self.assertEqual(done.stdout.strip(), "denied", done.describe())


def external_token(tmp, label, pin):
    """A throw-away SoftHSM2 token `label` with user PIN `pin` (the fixture's, not keyward's,
    so it may be on this command line) in its own directory under `tmp`, outside any agent's
    state; returns the SOFTHSM2_CONF that finds it."""
    tokens = tmp.mkdir(f"{label}-tokens")
    conf = tmp.write(f"{label}-softhsm2.conf", f"directories.tokendir = {tokens}\n"
                                               "objectstore.backend = file\nlog.level = ERROR\n")
    harness.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "27182818", "--pin", pin],
                env={"SOFTHSM2_CONF": conf})
    return conf


def hsm_token_toml(label, pin_file):
    """keyward.toml text: token `hsm`, the SoftHSM2 token `label`, its PIN from `pin_file`."""
    return ('[tokens.hsm]\nkind = "pkcs11"\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
            f'uri = "pkcs11:token={label}"\npin_file = "{pin_file}"\n')


class TestCredentials(AgentTestCase):
    """pin_file = "credential:NAME" reads $CREDENTIALS_DIRECTORY/NAME (what LoadCredential=
    gives a service); without that directory the agent says what is missing."""

    TOKEN_PIN = "583920"

    @classmethod
    def make_agent(cls):
        cls.softhsm_conf = external_token(cls.tmp, "creds", cls.TOKEN_PIN)
        cls.credentials = cls.tmp.mkdir("credentials", 0o500)
        pin = os.path.join(cls.credentials, "hsm-pin")
        os.chmod(cls.credentials, 0o700)
        with open(pin, "w") as f:
            f.write(cls.TOKEN_PIN + "\n")
        os.chmod(pin, 0o400)
        os.chmod(cls.credentials, 0o500)
        cls.config = cls.tmp.write("keyward.toml", hsm_token_toml("creds", "credential:hsm-pin"))
        return Agent(cls.tmp, config=cls.config,
                     env={"SOFTHSM2_CONF": cls.softhsm_conf, "CREDENTIALS_DIRECTORY": cls.credentials})

    def test_the_pin_comes_from_the_credential(self):
        self.agent.create_key("cred-key", "ec-p256")
        digest = hashlib.sha256(b"credential").digest()
        self.agent.cli("sign", "cred-key", "--scheme", SCHEME, "--digest", digest.hex(), "--out", os.devnull)
        self.assertNotIn(self.TOKEN_PIN, self.agent.log_text())

    def test_without_credentials_directory_the_agent_says_so(self):
        other = Agent(self.tmp, name="nocreds", config=self.config, env={"SOFTHSM2_CONF": self.softhsm_conf})
        other.env.pop("CREDENTIALS_DIRECTORY", None)
        other.start()
        try:
            line = other.wait_for_log(r"CREDENTIALS_DIRECTORY is not set")
            self.assertIn("LoadCredential=hsm-pin", line)
            self.assertIn("token hsm", line)
        finally:
            other.stop()


class TestLoosePinFile(AgentTestCase):
    """A PIN file other users can read is a PIN they have: the agent refuses it, names the
    file and the fix, and never logs the PIN; made owner-only, the same file works."""

    TOKEN_PIN = "610382"

    @classmethod
    def make_agent(cls):
        cls.softhsm_conf = external_token(cls.tmp, "loose", cls.TOKEN_PIN)
        cls.pin_file = cls.tmp.write("hsm.pin", cls.TOKEN_PIN + "\n", mode=0o644)
        cls.config = cls.tmp.write("keyward.toml", hsm_token_toml("loose", cls.pin_file))
        return Agent(cls.tmp, config=cls.config, env={"SOFTHSM2_CONF": cls.softhsm_conf})

    def test_group_or_world_readable_pin_file_is_refused_then_accepted_when_fixed(self):
        line = self.agent.wait_for_log(r"can be read by other users")
        self.assertIn(self.pin_file, line)
        self.assertIn(f"chmod 600 {self.pin_file}", line)
        refused = self.agent.cli("keys", "create", "loose-key", "--type", "ec-p256", check=False)
        self.assertNotEqual(refused.returncode, 0, refused.describe())
        self.assertIn("chmod 600", refused.stdout + refused.stderr)

        os.chmod(self.pin_file, 0o600)
        self.agent.create_key("loose-key", "ec-p256")
        digest = hashlib.sha256(b"owner-only").digest()
        self.agent.cli("sign", "loose-key", "--scheme", SCHEME, "--digest", digest.hex(), "--out", os.devnull)
        self.assertNotIn(self.TOKEN_PIN, self.agent.log_text())


class TestStateDirectory(AgentTestCase):
    """A state directory others could write to, or one below a directory others could
    write to, is refused with a message that says how to fix it."""

    def start_with_state(self, state):
        agent = Agent(self.tmp, name=f"sd{len(os.listdir(self.tmp.path))}", state_dir=state,
                      socket=self.tmp.join(f"sd-{os.path.basename(state)}.sock"))
        proc = agent.spawn()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.stop()
            return None, agent.log_text()
        return rc, agent.log_text()

    def test_world_writable_state_directory_is_refused(self):
        state = self.tmp.mkdir("open-state", 0o777)
        os.chmod(state, 0o777)
        rc, log = self.start_with_state(state)
        self.assertEqual(rc, 78, log)
        self.assertIn(f"the state directory {state} is writable by others (mode 0777)", log)
        self.assertIn(f"chmod 700 {state}", log)

    def test_state_directory_below_a_writable_directory_is_refused(self):
        parent = self.tmp.mkdir("shared-parent", 0o777)
        os.chmod(parent, 0o777)
        rc, log = self.start_with_state(os.path.join(parent, "state"))
        self.assertEqual(rc, 78, log)
        self.assertIn(f"the directory {parent} above the state directory is writable by others", log)

    def test_state_directory_owned_by_someone_else_is_refused(self):
        state = self.tmp.mkdir("their-state", 0o700)
        os.chown(state, NOBODY_UID, NOBODY_UID)
        rc, log = self.start_with_state(state)
        self.assertEqual(rc, 78, log)
        self.assertIn(f"belongs to uid {NOBODY_UID}", log)

    def test_symlinked_state_directory_is_refused(self):
        real = self.tmp.mkdir("real-state", 0o700)
        link = self.tmp.join("link-state")
        os.symlink(real, link)
        rc, log = self.start_with_state(link)
        self.assertEqual(rc, 78, log)
        self.assertIn("is a symbolic link", log)

    def test_a_private_state_directory_below_sticky_tmp_is_accepted(self):
        # The suite's own temporary directory sits in /tmp (sticky, world-writable): allowed.
        self.assertTrue(self.agent.alive())
        self.assertTrue(os.stat("/tmp").st_mode & 0o1000)


class TestUnits(AgentTestCase):
    """The shipped units verify, and the service's sandbox scores at most 2.0 in
    `systemd-analyze security --offline=true` (docs/systemd.md justifies what is left)."""

    UNITS = os.path.join(harness.source_dir(), "systemd")
    CONFIGURED = os.path.join(harness.bin_dir(), "systemd")  # the .in files with the prefix's paths

    def unit_text(self, name):
        configured = os.path.join(self.CONFIGURED, name)
        return open(configured if os.path.exists(configured) else os.path.join(self.UNITS, name)).read()

    def installed_copy(self):
        """The units with ExecStart pointing at the build tree (verify checks the binary)."""
        where = self.tmp.mkdir("units")
        for name in ("keywardd.service", "keywardd.socket"):
            text = self.unit_text(name)
            text = re.sub(r"ExecStart=\S+/keywardd", f"ExecStart={harness.keywardd_path()}", text)
            with open(os.path.join(where, name), "w") as f:
                f.write(text)
        return where

    def test_units_verify(self):
        where = self.installed_copy()
        analyze = harness.require_program("systemd-analyze")
        done = harness.run([analyze, "verify", os.path.join(where, "keywardd.service"),
                            os.path.join(where, "keywardd.socket")], check=False)
        self.assertEqual(done.rc, 0, done.describe())

    def test_reload_units_verify_as_an_instance(self):
        """keyward-reload@.path/.service (root reloads services after a renewal) verify for
        an identity, watch that identity's `current` link, and reload what root's list says."""
        where = self.tmp.mkdir("reload-units")
        for suffix in ("path", "service"):
            text = self.unit_text(f"keyward-reload@.{suffix}")
            for name in (f"keyward-reload@.{suffix}", f"keyward-reload@web.{suffix}"):
                with open(os.path.join(where, name), "w") as f:
                    f.write(text)
        analyze = harness.require_program("systemd-analyze")
        done = harness.run([analyze, "verify", os.path.join(where, "keyward-reload@web.path"),
                            os.path.join(where, "keyward-reload@web.service")], check=False)
        self.assertEqual(done.rc, 0, done.describe())
        path_unit = open(os.path.join(where, "keyward-reload@.path")).read()
        self.assertIn("PathChanged=/var/lib/keyward/identities/%i/current", path_unit)
        service = open(os.path.join(where, "keyward-reload@.service")).read()
        self.assertRegex(service, r"EnvironmentFile=/\S*etc/keyward/reload/%i")
        self.assertNotIn("User=", service, "the reload runs as root, not as the agent")

    def test_exposure_at_most_2(self):
        analyze = harness.require_program("systemd-analyze")
        done = harness.run([analyze, "security", "--offline=true", os.path.join(self.installed_copy(),
                                                                               "keywardd.service")], check=False)
        m = re.search(r"Overall exposure level for keywardd.service: (\d+\.\d+)", done.stdout)
        self.assertIsNotNone(m, done.describe())
        print(f"systemd-analyze security: exposure {m.group(1)}")
        self.assertLessEqual(float(m.group(1)), 2.0, done.stdout)


class TestInstall(AgentTestCase):
    """`meson install` lays out what a service needs: units, sysusers and tmpfiles snippets
    that systemd's own tools accept, an example configuration the installed agent starts
    with, and man pages that render."""

    @classmethod
    def make_agent(cls):
        cls.dest = cls.tmp.mkdir("destdir")
        done = harness.run([harness.require_program("meson"), "install", "-C", harness.bin_dir(), "--no-rebuild",
                            "--destdir", cls.dest], check=False, timeout=300)
        assert done.rc == 0, done.describe()
        cls.prefix = cls.find("lib/systemd/system/keywardd.service")[: -len("/lib/systemd/system/keywardd.service")]
        return Agent(cls.tmp)

    @classmethod
    def find(cls, suffix):
        for root, _dirs, files in os.walk(cls.dest):
            for name in files:
                path = os.path.join(root, name)
                if path.endswith("/" + suffix):
                    return path
        raise AssertionError(f"meson install did not install */{suffix} under {cls.dest}")

    def test_sysusers_snippet_creates_the_user_and_group(self):
        root = self.tmp.mkdir("sysusers-root")
        os.makedirs(os.path.join(root, "etc"))
        tool = harness.require_program("systemd-sysusers")
        done = harness.run([tool, f"--root={root}", os.path.join(self.prefix, "lib/sysusers.d/keyward.conf")],
                           check=False)
        self.assertEqual(done.rc, 0, done.describe())
        passwd = open(os.path.join(root, "etc/passwd")).read()
        group = open(os.path.join(root, "etc/group")).read()
        self.assertRegex(passwd, r"(?m)^keyward:x:\d+:\d+:")
        self.assertRegex(group, r"(?m)^keyward:x:\d+:")
        self.assertRegex(group, r"(?m)^tss:x:\d+:.*keyward", "the agent's user must be in tss for /dev/tpmrm0")

    def test_tmpfiles_snippet_makes_the_configuration_directories(self):
        root = self.tmp.mkdir("tmpfiles-root")
        tool = harness.require_program("systemd-tmpfiles")
        done = harness.run([tool, f"--root={root}", "--create", os.path.join(self.prefix, "lib/tmpfiles.d/keyward.conf")],
                           check=False)
        self.assertEqual(done.rc, 0, done.describe())
        snippet = open(os.path.join(self.prefix, "lib/tmpfiles.d/keyward.conf")).read()
        wanted = re.findall(r"(?m)^d (\S+)", snippet)
        self.assertEqual([os.path.basename(d) for d in wanted], ["keyward", "reload"], snippet)
        for d in wanted:
            st = os.stat(os.path.join(root, d.lstrip("/")))
            self.assertEqual(oct(st.st_mode & 0o777), oct(0o755), d)
            self.assertEqual(st.st_uid, 0, d)

    def test_the_installed_agent_starts_with_the_example_configuration(self):
        example = self.find("keyward/keyward.toml")
        installed = self.find("sbin/keywardd") if os.path.exists(os.path.join(self.prefix, "sbin/keywardd")) \
            else self.find("bin/keywardd")
        # Group `keyward` is made by sysusers on a real install; here the test's own group stands in.
        text = open(example).read().replace('"keyward"', f'"{grp.getgrgid(os.getgid()).gr_name}"')
        config = self.tmp.write("example.toml", text)
        agent = Agent(self.tmp, name="example", config=config)
        agent.argv = lambda: [installed] + Agent.argv(agent)[1:]
        agent.start()
        try:
            status = agent.cli("status", json=True).data
            self.assertEqual([t["name"] for t in status["tokens"]], ["embedded"], status)
            agent.create_key("example-key", "ec-p256")
        finally:
            agent.stop()

    def test_man_pages_render(self):
        man = harness.require_program("man")
        for page, section, needle in (("keywardd", "8", "socket activation"), ("keyward", "1", "keys create"),
                                      ("keyward.toml", "5", "credential:NAME")):
            with self.subTest(page=page):
                path = self.find(f"man{section}/{page}.{section}")
                done = harness.run([man, "-l", path], env={"MANWIDTH": "200", "MAN_KEEP_FORMATTING": None}, check=False)
                self.assertEqual(done.rc, 0, done.describe())
                self.assertIn(needle, " ".join(done.stdout.split()))


if __name__ == "__main__":
    harness.main()
