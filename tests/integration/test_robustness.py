"""keywardd survives hostile and clumsy clients on its socket (garbage, oversized lengths,
half frames, unknown operations, connection storms, clients that never read) and serves
many concurrent signers correctly. After each abuse a normal `keyward sign` must succeed."""

import hashlib
import os
import random
import socket
import struct
import threading
import time

import harness
from harness import ERRORS, MAX_FRAME, OPS, RESPONSE_BIT, AgentTestCase, connect_unix, frame, hello_frame, \
    openssl, recv_frame, sign_frame, tlv

KEY = "robust"
SCHEME = "ecdsa_secp256r1_sha256"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class TestRobustness(AgentTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent.create_key(KEY, "ec-p256")
        cls.pub = cls.tmp.join("robust.pub.pem")
        cls.agent.pubkey(KEY, cls.pub)
        cls.message = cls.tmp.write("message.txt", "still serving\n")
        cls.digest = hashlib.sha256(open(cls.message, "rb").read()).digest()
        cls.digest_file = cls.tmp.write("message.sha256", cls.digest)

    # -- helpers --

    def verify_signature(self, sig_bytes, digest_file=None):
        sig = self.tmp.write(f"sig-{threading.get_ident()}-{time.monotonic_ns()}.der", sig_bytes)
        done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", self.pub, "-in", digest_file or self.digest_file,
                       "-sigfile", sig, "-pkeyopt", "digest:sha256", check=False)
        os.unlink(sig)
        return done.rc == 0

    def assert_still_serving(self):
        self.assertAgentAlive()
        out = self.tmp.join("check.sig")
        self.agent.cli("sign", KEY, "--scheme", SCHEME, "--in", self.message, "--out", out)
        openssl("dgst", "-sha256", "-verify", self.pub, "-signature", out, self.message)
        self.assertAgentAlive()

    def read_until_closed(self, sock, timeout=10):
        """Frames the agent sends before it hangs up; fails if it keeps the connection open."""
        sock.settimeout(timeout)
        frames = []
        try:
            while True:
                f = recv_frame(sock)
                if f is None:
                    return frames
                frames.append(f)
        except (ConnectionResetError, BrokenPipeError):
            return frames
        except socket.timeout:
            self.fail(f"the agent kept a desynchronised connection open for {timeout}s (got {frames})")

    def exchange(self, sock, data):
        sock.sendall(data)
        answer = recv_frame(sock)
        self.assertIsNotNone(answer, "the agent hung up instead of answering")
        return answer

    def assert_hello_works(self, sock, request_id=900):
        answer = self.exchange(sock, hello_frame(request_id))
        self.assertEqual(answer["op"], OPS["hello"] | RESPONSE_BIT, answer)
        self.assertEqual(answer["status"], 0, answer)
        self.assertEqual(answer["request_id"], request_id, answer)

    def assert_refused_and_closed(self, payload):
        with connect_unix(self.agent.socket) as s:
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                return
            frames = self.read_until_closed(s)
        for f in frames:
            self.assertNotEqual(f["status"], 0, f"the agent accepted garbage: {f}")
            self.assertEqual(f["op"] & RESPONSE_BIT, RESPONSE_BIT, f)

    # -- abuse --

    def test_garbage_bytes(self):
        self.assert_refused_and_closed(b"\xff" * 64)
        self.assert_still_serving()
        self.assert_refused_and_closed(b"GET / HTTP/1.1\r\nHost: keyward\r\n\r\n")
        self.assert_still_serving()
        self.assert_refused_and_closed(b"\x00" * 16)  # length 0: shorter than a header
        self.assert_still_serving()
        rng = random.Random(20240611)
        for _ in range(50):
            with connect_unix(self.agent.socket) as s:
                try:
                    s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))))
                except (BrokenPipeError, ConnectionResetError):
                    pass
        self.assert_still_serving()

    def test_oversized_length_prefix(self):
        for length in (MAX_FRAME + 1, 1 << 20, 0xFFFFFFFF):
            with self.subTest(length=length):
                payload = struct.pack(">I", length) + struct.pack(">BBHI", 1, OPS["status"], 0, 1)
                with connect_unix(self.agent.socket) as s:
                    s.sendall(payload)
                    frames = self.read_until_closed(s)
                for f in frames:
                    self.assertEqual(f["status"], ERRORS["bad_request"], f)
                self.assert_still_serving()

    def test_largest_allowed_frame_is_read(self):
        # Exactly the maximum is legal: the agent must read all of it and answer.
        body = tlv(harness.TAGS["message"], b"x" * (MAX_FRAME - 8 - 4))
        payload = frame(0x7E, 4242, body)
        self.assertEqual(struct.unpack(">I", payload[:4])[0], MAX_FRAME)
        with connect_unix(self.agent.socket) as s:
            answer = self.exchange(s, payload)
            self.assertEqual(answer["status"], ERRORS["unknown_operation"], answer)
            self.assertEqual(answer["request_id"], 4242)
            self.assert_hello_works(s)
        self.assert_still_serving()

    def test_half_frame_then_close(self):
        full = sign_frame(7, KEY, SCHEME, self.digest)
        for cut in (1, 3, 4, 8, 12, len(full) // 2, len(full) - 1):
            with connect_unix(self.agent.socket) as s:
                s.sendall(full[:cut])
        self.assert_still_serving()

    def test_frame_split_across_writes_is_reassembled(self):
        full = sign_frame(8, KEY, SCHEME, self.digest)
        with connect_unix(self.agent.socket) as s:
            for i in range(len(full)):
                s.sendall(full[i:i + 1])
                if i in (2, 10, 30):
                    time.sleep(0.1)  # the agent sees an incomplete frame and must wait for more
            answer = recv_frame(s)
        self.assertIsNotNone(answer)
        self.assertEqual(answer["status"], 0, answer)
        self.assertEqual(answer["request_id"], 8)
        sigs = [v for t, v in answer["tlvs"] if t == harness.TAGS["signature"]]
        self.assertEqual(len(sigs), 1, answer)
        self.assertTrue(self.verify_signature(sigs[0]), "the reassembled request's signature does not verify")

    def test_unknown_operation_gets_an_error_answer(self):
        with connect_unix(self.agent.socket) as s:
            answer = self.exchange(s, frame(0x42, 77))
            self.assertEqual(answer["version"], 1, answer)
            self.assertEqual(answer["op"], 0x42 | RESPONSE_BIT, answer)
            self.assertEqual(answer["status"], ERRORS["unknown_operation"], answer)
            self.assertEqual(answer["request_id"], 77, answer)
            messages = [v for t, v in answer["tlvs"] if t == harness.TAGS["message"]]
            self.assertTrue(messages and messages[0], f"the error carries no message: {answer}")
            self.assert_hello_works(s)  # not a disconnect: the connection goes on
        self.assert_still_serving()

    def test_malformed_requests_get_error_answers_on_a_live_connection(self):
        with connect_unix(self.agent.socket) as s:
            truncated_tlv = frame(OPS["sign"], 11, struct.pack(">HH", harness.TAGS["name"], 200) + b"abc")
            answer = self.exchange(s, truncated_tlv)
            self.assertEqual((answer["request_id"], answer["status"]), (11, ERRORS["bad_request"]), answer)
            answer = self.exchange(s, frame(OPS["sign"], 12, version=9))
            self.assertEqual((answer["request_id"], answer["status"]), (12, ERRORS["unsupported_version"]), answer)
            answer = self.exchange(s, frame(OPS["status"] | RESPONSE_BIT, 13))
            self.assertEqual((answer["request_id"], answer["status"]), (13, ERRORS["bad_request"]), answer)
            answer = self.exchange(s, sign_frame(14, KEY, SCHEME, self.digest[:20]))
            self.assertEqual((answer["request_id"], answer["status"]), (14, ERRORS["invalid_argument"]), answer)
            answer = self.exchange(s, sign_frame(15, "no-such-key", SCHEME, self.digest))
            self.assertEqual((answer["request_id"], answer["status"]), (15, ERRORS["no_such_key"]), answer)
            self.assert_hello_works(s)
        self.assert_still_serving()

    def test_thousand_connect_close_cycles(self):
        pid = self.agent.pid
        baseline = fd_count(pid)
        for i in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.agent.socket)
            if i % 100 == 0:
                s.sendall(hello_frame(i))  # some leave with a request in flight
            s.close()
        self.assert_still_serving()
        settled = harness.wait_until(lambda: fd_count(pid) <= baseline + 2, 10)
        self.assertTrue(settled, f"the agent leaks descriptors: {baseline} before, {fd_count(pid)} after "
                                 f"1,000 connections")

    def test_client_that_never_reads_its_answers(self):
        # 200,000 STATUS requests would make ~30 MB of answers. The agent queues at most
        # about 1 MiB for one client and then stops reading from it (back-pressure), so its
        # memory must stay flat while our writes block.
        batch = b"".join(frame(OPS["status"], i) for i in range(200000))
        rss_before = rss_kib(self.agent.pid)
        with connect_unix(self.agent.socket, timeout=3) as s:
            try:
                s.sendall(batch)
                self.fail("the agent read 2.4 MB of requests from a client that reads no answers")
            except socket.timeout:
                pass
            growth = rss_kib(self.agent.pid) - rss_before
            self.assertLess(growth, 16 * 1024, f"the agent grew by {growth} KiB for one client that does not read")
        self.assert_still_serving()

    def test_pipelined_requests_on_one_connection(self):
        ids = list(range(100, 140))
        with connect_unix(self.agent.socket) as s:
            s.sendall(b"".join(sign_frame(i, KEY, SCHEME, self.digest) for i in ids))
            answers = [recv_frame(s) for _ in ids]
        self.assertEqual(sorted(a["request_id"] for a in answers), ids)
        for a in answers:
            self.assertEqual(a["status"], 0, a)
        for a in answers[:5]:
            sig = [v for t, v in a["tlvs"] if t == harness.TAGS["signature"]][0]
            self.assertTrue(self.verify_signature(sig))

    # -- concurrency --

    def test_sixteen_concurrent_cli_clients(self):
        before = self.agent.signatures()
        inputs = [self.tmp.write(f"conc-{i}.txt", f"client {i}: {os.urandom(8).hex()}\n") for i in range(16)]
        start = threading.Barrier(16)
        results = [None] * 16

        def client(i):
            start.wait()
            results[i] = self.agent.cli("sign", KEY, "--scheme", SCHEME, "--in", inputs[i],
                                        "--out", inputs[i] + ".sig", check=False)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i, done in enumerate(results):
            with self.subTest(client=i):
                self.assertIsNotNone(done, "client thread did not finish")
                self.assertEqual(done.rc, 0, done.describe())
                openssl("dgst", "-sha256", "-verify", self.pub, "-signature", inputs[i] + ".sig", inputs[i])
        self.assertEqual(self.agent.signatures(), before + 16)
        self.assertAgentAlive()

    def test_sixteen_concurrent_connections_pipelining(self):
        per_client = 25
        start = threading.Barrier(16)
        collected = [None] * 16
        errors = []

        def client(i):
            try:
                digests = [hashlib.sha256(f"{i}/{j}".encode()).digest() for j in range(per_client)]
                with connect_unix(self.agent.socket, timeout=60) as s:
                    start.wait()
                    s.sendall(b"".join(sign_frame(j, KEY, SCHEME, d) for j, d in enumerate(digests)))
                    answers = {}
                    for _ in range(per_client):
                        a = recv_frame(s)
                        answers[a["request_id"]] = a
                collected[i] = (digests, answers)
            except Exception as e:  # reported below with the client number
                errors.append(f"client {i}: {e!r}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        for i, (digests, answers) in enumerate(collected):
            self.assertEqual(sorted(answers), list(range(per_client)), f"client {i}")
            for j in (0, per_client - 1):  # verify a sample of each client's answers
                a = answers[j]
                self.assertEqual(a["status"], 0, a)
                sig = [v for t, v in a["tlvs"] if t == harness.TAGS["signature"]][0]
                dfile = self.tmp.write(f"d-{i}-{j}.bin", digests[j])
                self.assertTrue(self.verify_signature(sig, dfile), f"client {i} request {j}: bad signature")
        self.assert_still_serving()


if __name__ == "__main__":
    harness.main()
