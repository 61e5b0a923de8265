"""A shared agent on a multi-user machine: one local user (uid 65534) attacks the socket the
way issue 12 describes, and the agent stays cheap, keeps its log small and clean, and keeps
serving root at once. Also: groups come from the connecting process (SO_PEERGROUPS), not
from the user database."""

import hashlib
import os
import re
import resource
import socket
import struct
import time

import harness
from harness import ERRORS, NOBODY_UID, OPS, RESPONSE_BIT, Agent, AgentTestCase, frame, openssl, recv_frame, tlv

KEY = "shared"
SCHEME = "ecdsa_secp256r1_sha256"
TAG_NAME, TAG_SCHEME, TAG_DIGEST = 3, 6, 7


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def as_nobody(work, *, groups=(), gid=NOBODY_UID, nofile=None):
    """Runs work() in a forked child with uid 65534 (and the given gid and supplementary
    groups); returns what it wrote to its pipe (bytes). Raises if the child failed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        code = 1
        try:
            os.close(read_end)
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID)
            out = work() or b""
            os.write(write_end, out)
            code = 0
        except BaseException as e:  # report, never fall back into unittest
            os.write(write_end, f"child failed: {e!r}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    out = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) != 0:
        raise AssertionError(out.decode(errors="replace"))
    return out


class SharedAgentCase(AgentTestCase):
    config_text = ""
    nofile = None  # the agent's open-file limit (soft and hard), None: inherited

    @classmethod
    def make_agent(cls):
        public = cls.tmp.public_dir("public")
        config = cls.tmp.write("keyward.toml", cls.config_text) if cls.config_text else None
        agent = Agent(cls.tmp, socket=os.path.join(public, "agent.sock"), socket_mode=0o666, config=config,
                      log_level="info")
        if cls.nofile:
            base = agent.argv
            limit = cls.nofile
            agent.argv = lambda: [harness.require_program("prlimit"), f"--nofile={limit}:{limit}", "--"] + base()
        return agent

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key(KEY, "ec-p256")
        cls.pub = cls.tmp.join("shared.pub.pem")
        cls.agent.pubkey(KEY, cls.pub)
        cls.message = cls.tmp.write("message.txt", "still serving\n")

    def root_signs(self, within):
        out = self.tmp.join("root.sig")
        started = time.monotonic()
        self.agent.cli("sign", KEY, "--scheme", SCHEME, "--in", self.message, "--out", out, timeout=60)
        took = time.monotonic() - started
        openssl("dgst", "-sha256", "-verify", self.pub, "-signature", out, self.message)
        self.assertLess(took, within, f"root's signature took {took:.2f} s during the attack")
        return took

    def log_lines_since(self, mark):
        return self.agent.log_since(mark).splitlines()

    def during_flood(self, count, hold_seconds, name, measure):
        """Opens `count` connections as uid 65534 (in a child, held `hold_seconds`) and returns
        measure() called once they are all open."""
        ready = os.path.join(self.tmp.public_dir("public"), f"{name}.ready")
        pid = os.fork()
        if pid == 0:
            os._exit(0 if as_nobody(flood_connections(self.agent.socket, count, hold_seconds, ready),
                                    nofile=4096) else 1)
        try:
            harness.wait_until(lambda: os.path.exists(ready), 60)
            return measure()
        finally:
            os.waitpid(pid, 0)

    def cpu_during(self, seconds):
        start = cpu_seconds(self.agent.pid)
        time.sleep(seconds)
        return cpu_seconds(self.agent.pid) - start


def flood_connections(path, count, hold_seconds, ready_file):
    """In the attacker: opens `count` connections, waits `hold_seconds`, and reports how many
    the agent answered with a `busy` refusal and how many it kept open."""
    def work():
        socks, refused, failed = [], 0, 0
        for _ in range(count):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(path)
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        open(ready_file, "w").close()
        time.sleep(hold_seconds)
        kept = 0
        for s in socks:
            s.setblocking(False)
            try:
                data = s.recv(4096)
                if data and len(data) >= 12 and data[5] & RESPONSE_BIT and \
                        struct.unpack(">H", data[6:8])[0] == ERRORS["busy"]:
                    refused += 1
                elif not data:
                    refused += 1  # closed without a word (cannot happen unless the agent ran out of descriptors)
            except BlockingIOError:
                kept += 1
            s.close()
        return f"{kept} {refused} {failed}".encode()
    return work


class TestConnectionCaps(SharedAgentCase):
    """1,100 idle connections from one uid under a 1,024-descriptor limit (systemd's default):
    the agent keeps the uid to its share, refuses the rest with `busy`, stays idle, logs a
    handful of lines, and root signs at once meanwhile."""

    nofile = 1024

    def test_connection_flood_from_one_uid(self):
        mark = self.agent.log_size()
        cpu_before = cpu_seconds(self.agent.pid)
        busy_cpu, took = self.during_flood(1100, 6, "flood",
                                           lambda: (self.cpu_during(2), self.root_signs(within=2.0)))
        lines = self.log_lines_since(mark)
        print(f"flood: agent CPU {busy_cpu:.3f} s in 2 s while held, {cpu_seconds(self.agent.pid) - cpu_before:.2f} s "
              f"in all, {len(lines)} log lines, root signed in {took * 1000:.0f} ms")
        self.assertLess(busy_cpu, 0.4, "the agent spins while the connections are held")
        self.assertLess(len(lines), 40, "the flood grew the log without bound:\n" + "\n".join(lines[:50]))
        self.assertTrue(any("limit per user" in line for line in lines), "\n".join(lines))
        self.assertAgentAlive()
        self.root_signs(within=5.0)

    def test_refused_connections_are_told_busy(self):
        ready = os.path.join(self.tmp.public_dir("public"), "small.ready")
        out = as_nobody(flood_connections(self.agent.socket, 300, 1, ready), nofile=4096).decode()
        kept, refused, failed = (int(x) for x in out.split())
        per_uid = (1024 - 64) // 4
        self.assertEqual(kept, per_uid, out)
        self.assertEqual(refused, 300 - per_uid, out)
        self.assertEqual(failed, 0, out)


class TestDescriptorExhaustion(SharedAgentCase):
    """Caps set above the open-file limit: accept fails with EMFILE. The listener leaves epoll
    until a descriptor frees (no busy loop, one log line), and service resumes after."""

    nofile = 256
    config_text = "[agent]\nmax_connections = 5000\nmax_connections_per_uid = 5000\n"

    def test_emfile_does_not_spin(self):
        mark = self.agent.log_size()
        busy_cpu = self.during_flood(400, 5, "emfile", lambda: self.cpu_during(2))
        lines = self.log_lines_since(mark)
        emfile = [line for line in lines if "Too many open files" in line]
        print(f"EMFILE: agent CPU {busy_cpu:.3f} s in 2 s, {len(emfile)} EMFILE lines, {len(lines)} lines in all")
        self.assertLess(busy_cpu, 0.4, "accept() spins on EMFILE")
        self.assertGreaterEqual(len(emfile), 1, "\n".join(lines[-20:]))
        self.assertLess(len(lines), 40, "\n".join(lines[:50]))
        harness.wait_until(lambda: fd_count(self.agent.pid) < 100, 20)
        self.root_signs(within=5.0)


class TestHostileRequests(SharedAgentCase):
    config_text = "[agent]\nread_timeout = 2\n"

    def test_denial_flood_is_bounded_and_escaped(self):
        """3,000 denied signs for a 65,000-byte key name full of control bytes."""
        name = (b"k1\x1b[2J\x07\x00\n<0>emerg: root login ok " * 2000)[:65000]
        digest = hashlib.sha256(b"x").digest()
        body = tlv(TAG_NAME, name) + tlv(TAG_SCHEME, struct.pack(">H", 0x0403)) + tlv(TAG_DIGEST, digest)
        before = self.agent.log_size()

        def work():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(self.agent.socket)
            denied = 0
            for i in range(3000):
                s.sendall(frame(OPS["sign"], i + 1, body))
                answer = recv_frame(s)
                if answer and answer["status"] == ERRORS["access_denied"]:
                    denied += 1
            s.close()
            return str(denied).encode()

        denied = int(as_nobody(work))
        grown = self.agent.log_size() - before
        with open(self.agent.log_path, "rb") as f:
            f.seek(before)
            added = f.read()
        print(f"denial flood: {denied} denials, log grew {grown} bytes")
        self.assertEqual(denied, 3000)
        self.assertLess(grown, 8192, "the denial flood grew the log by %d bytes" % grown)
        for raw in (b"\x1b", b"\x00", b"\x07", b"<0>emerg"):
            if raw == b"<0>emerg":
                self.assertNotIn(b"\n<0>emerg", added, "a client forged a log line")
            else:
                self.assertNotIn(raw, added, f"a raw {raw!r} reached the log")
        self.assertIn(b"\\x1b[2J\\x07\\x00\\x0a", added)
        self.root_signs(within=2.0)

    def test_half_sent_frames_are_closed_after_the_read_timeout(self):
        before_fds = fd_count(self.agent.pid)

        def work():
            socks = []
            for _ in range(50):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.agent.socket)
                s.sendall(struct.pack(">I", 65000) + b"\x01\x05" + b"x" * 1000)  # and never the rest
                socks.append(s)
            time.sleep(1)
            open_at_1s = len(socks)
            closed = 0
            deadline = time.monotonic() + 8
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except OSError:
                    pass
            return f"{open_at_1s} {closed}".encode()

        started = time.monotonic()
        _, closed = (int(x) for x in as_nobody(work).split())
        took = time.monotonic() - started
        self.assertEqual(closed, 50, "partial frames were kept open past the read timeout")
        self.assertLess(took, 8)
        harness.wait_until(lambda: fd_count(self.agent.pid) <= before_fds + 2, 10)
        self.root_signs(within=2.0)


class TestFairness(SharedAgentCase):
    """One uid keeps the token's queue full of RSA-2048 signatures; another uid's EC
    signature waits for about one operation, not for the flood."""

    config_text = "[keys.flood-rsa]\nallow_users = [%d]\n" % NOBODY_UID

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key("flood-rsa", "rsa-2048")

    def test_a_flood_from_one_uid_does_not_delay_another(self):
        stop_file = os.path.join(self.tmp.public_dir("public"), "fair.stop")
        ready = os.path.join(self.tmp.public_dir("public"), "fair.ready")
        digest = hashlib.sha256(b"flood").digest()
        flood_body = tlv(TAG_NAME, "flood-rsa") + tlv(TAG_SCHEME, struct.pack(">H", 0x0401)) + tlv(TAG_DIGEST, digest)

        def flood():
            socks = []
            for _ in range(16):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(60)
                s.connect(self.agent.socket)
                socks.append(s)
            sent = answered = 0
            for s in socks:  # fill every connection's pipeline, then keep it full
                s.sendall(b"".join(frame(OPS["sign"], i + 1, flood_body) for i in range(120)))
                sent += 120
            open(ready, "w").close()
            while not os.path.exists(stop_file):
                for s in socks:
                    answer = recv_frame(s)
                    answered += 1
                    s.sendall(frame(OPS["sign"], 1, flood_body))
            return f"{answered}".encode()

        pid = os.fork()
        if pid == 0:
            os._exit(0 if as_nobody(flood) else 1)
        latencies = []
        try:
            harness.wait_until(lambda: os.path.exists(ready), 60)
            time.sleep(0.5)  # let the queue fill
            ec_digest = hashlib.sha256(b"mine").digest()
            body = tlv(TAG_NAME, KEY) + tlv(TAG_SCHEME, struct.pack(">H", 0x0403)) + tlv(TAG_DIGEST, ec_digest)
            s = harness.connect_unix(self.agent.socket, timeout=60)
            for i in range(40):
                started = time.monotonic()
                s.sendall(frame(OPS["sign"], i + 1, body))
                answer = recv_frame(s)
                latencies.append(time.monotonic() - started)
                self.assertEqual(answer["status"], 0, answer)
            s.close()
        finally:
            open(stop_file, "w").close()
            os.waitpid(pid, 0)
        latencies.sort()
        median, worst = latencies[len(latencies) // 2], latencies[-1]
        print(f"fairness: EC sign under an RSA flood from another uid: median {median * 1000:.1f} ms, "
              f"max {worst * 1000:.1f} ms")
        self.assertLess(median, 0.1, f"latencies {latencies}")
        self.assertLess(worst, 0.5, f"latencies {latencies}")


class TestScopedStatus(SharedAgentCase):
    """STATUS tells a non-admin only about the keys it may use, and nothing of other users'
    activity (the global signature counter is a side channel)."""

    config_text = "[keys.theirs]\nallow_users = [%d]\n" % NOBODY_UID

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key("theirs", "ec-p256")
        cls.agent.create_key("not-theirs", "ec-p256")

    def test_status_is_scoped_for_non_admins(self):
        self.root_signs(within=5.0)
        admin = self.agent.cli("status", json=True).data
        self.assertEqual(admin["key_count"], 3, admin)
        self.assertGreaterEqual(admin["signatures"], 1, admin)
        theirs = self.agent.cli("status", json=True, user=NOBODY_UID).data
        self.assertEqual(theirs["key_count"], 1, theirs)
        self.assertEqual(theirs["signatures"], 0, theirs)
        self.assertEqual(theirs["key_use"], [], "per-key use is for admins only")

    def test_admins_see_per_key_use(self):
        before = {u["key"]: u["signatures"] for u in self.agent.cli("status", json=True).data["key_use"]}
        digest = hashlib.sha256(b"use").hexdigest()
        for _ in range(3):
            self.agent.cli("sign", "theirs", "--scheme", "ecdsa_secp256r1_sha256", "--digest", digest,
                           "--out", os.devnull, user=NOBODY_UID)
        after = {u["key"]: u["signatures"] for u in self.agent.cli("status", json=True).data["key_use"]}
        self.assertEqual(after["theirs"] - before.get("theirs", 0), 3, after)
        self.assertNotIn("not-theirs", after, "a key nobody used has no line")
        text = self.agent.cli("status").stdout
        self.assertRegex(text, r"key use: .*\n(  .*\n)*  theirs +\d+")


class TestAuditSummary(SharedAgentCase):
    """By default: each management operation, the first signature of each (key, uid,
    executable) in an interval, and a count per (key, uid) when the interval ends."""

    config_text = "[agent]\naudit_interval = 2\n"

    def test_management_and_signature_records(self):
        mark = self.agent.log_size()
        for _ in range(3):
            self.root_signs(within=5.0)
        self.agent.create_key("audited", "ec-p256")
        self.agent.cli("keys", "delete", "audited")
        count_line = self.agent.wait_for_log(r"audit: op=sign-count key=shared uid=0 count=3 ", since=mark, timeout=10)
        lines = [line for line in self.log_lines_since(mark) if "audit:" in line]
        firsts = [line for line in lines if "op=sign " in line]
        self.assertEqual(len(firsts), 1, "\n".join(lines))
        self.assertRegex(firsts[0], r"audit: op=sign key=shared uid=0 pid=\d+ exe=\S*/keyward result=ok "
                                    r"first-in-interval=yes")
        self.assertTrue(any(re.search(r"op=generate_key key=audited uid=0 pid=\d+ exe=\S+ result=ok", line)
                            for line in lines), "\n".join(lines))
        self.assertTrue(any(re.search(r"op=delete_key key=audited uid=0 .* result=ok", line) for line in lines),
                        "\n".join(lines))
        self.assertIn("interval=2s", count_line)


class TestAuditEverySignature(SharedAgentCase):
    config_text = "[agent]\naudit = \"every-signature\"\n"

    def test_one_record_per_signature(self):
        mark = self.agent.log_size()
        for _ in range(3):
            self.root_signs(within=5.0)
        records = [line for line in self.log_lines_since(mark) if "audit: op=sign key=shared" in line]
        self.assertEqual(len(records), 3, "\n".join(records))
        self.assertTrue(all("result=ok" in line for line in records))


class TestProcessGroups(SharedAgentCase):
    """allow_groups is matched against the groups the connecting process holds."""

    SUPPLEMENTARY = 42424  # in no /etc/group entry: only a process can hold it
    config_text = (f"[keys.group-key]\nallow_groups = [{SUPPLEMENTARY}]\n"
                   f"[keys.nogroup-key]\nallow_groups = [{NOBODY_UID}]\n")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for key in ("group-key", "nogroup-key"):
            cls.agent.create_key(key, "ec-p256")

    def sign_with(self, key, setpriv_args):
        digest = hashlib.sha256(b"groups").digest()
        argv = [harness.require_program("setpriv"), f"--reuid={NOBODY_UID}", *setpriv_args, "--",
                harness.cli_path(), "sign", key, "--scheme", SCHEME, "--digest", digest.hex(), "--out", "/dev/null"]
        return harness.run(argv, env={"KEYWARD_SOCKET": self.agent.socket}, check=False)

    def test_supplementary_group_the_user_database_does_not_list_is_granted(self):
        done = self.sign_with("group-key", [f"--regid={NOBODY_UID}", f"--groups={self.SUPPLEMENTARY}"])
        self.assertEqual(done.rc, 0, done.describe())

    def test_without_the_group_it_is_denied(self):
        done = self.sign_with("group-key", [f"--regid={NOBODY_UID}", "--clear-groups"])
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn("denied", done.stderr)

    def test_a_group_only_the_user_database_gives_is_not_granted(self):
        # nobody's primary group in /etc/passwd is 65534; this process runs with another gid
        # and no supplementary groups, so it does not hold 65534.
        done = self.sign_with("nogroup-key", ["--regid=4242", "--clear-groups"])
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn("denied", done.stderr)
        done = self.sign_with("nogroup-key", [f"--regid={NOBODY_UID}", "--clear-groups"])
        self.assertEqual(done.rc, 0, done.describe())


if __name__ == "__main__":
    harness.main()
