"""The PC/SC monitor (pcsc/monitor.cpp, through tests/pcsc/monitor_probe) against a real pcscd and the virtual card:
insertion with the ATR, removal, a pcscd killed and restarted (errors, then the readers again), and a prompt stop.
The fixture itself is checked first: OpenSC sees the card and signs with it (pkcs11-tool -L -O, --sign)."""

import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import card_fixture  # noqa: E402
from card_fixture import harness  # noqa: E402


class Probe:
    """monitor_probe in the background; its event lines collected as they come."""

    def __init__(self, env):
        path = harness.require_program(os.path.join(harness.bin_dir(), "tests", "pcsc", "monitor_probe"))
        self.proc = subprocess.Popen([path, "120"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=dict(os.environ, **env), text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def wait_for(self, state, reader, since, timeout=15):
        def find():
            with self.lock:
                for line in self.lines[since:]:
                    parts = line.split(" ", 2)
                    if len(parts) == 3 and parts[1] == state and parts[2].startswith(reader):
                        return line
            return None
        line = harness.wait_until(find, timeout)
        if not line:
            with self.lock:
                seen = "\n".join(self.lines[since:])
            raise AssertionError(f"no '{state}' event for {reader!r} within {timeout}s; events:\n{seen}")
        return line

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        with self.lock:
            return self.lines[-1] if self.lines else ""


class MonitorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir("keyward-pcsc-")
        cls.card = card_fixture.CardFixture(cls.tmp)
        cls.card.start_pcscd()

    @classmethod
    def tearDownClass(cls):
        cls.card.stop()
        cls.tmp.cleanup()

    def setUp(self):
        if not self.card.pcscd or self.card.pcscd.poll() is not None:
            self.card.start_pcscd()
        if self.card.inserted():
            self.card.remove()

    def test_opensc_sees_the_card_and_signs(self):
        self.card.insert()
        listing = self.card.pkcs11_tool("-L", "-O").stdout
        self.assertIn(card_fixture.CARD_LABEL, listing)
        self.assertIn(f"ID:         {card_fixture.KEY_ID_HEX}", listing)
        data = self.tmp.write("data.txt", "signed by the virtual card\n")
        sig = self.tmp.join("data.sig")
        self.card.pkcs11_tool("--login", "--pin", card_fixture.PIN, "--sign", "--id", card_fixture.KEY_ID_HEX,
                              "-m", "SHA256-RSA-PKCS", "-i", data, "-o", sig)
        pub = self.tmp.join("card.pub")
        harness.openssl("x509", "-in", self.card.cert_pem, "-pubkey", "-noout", "-out", pub)
        harness.openssl("dgst", "-sha256", "-verify", pub, "-signature", sig, data)

    def test_the_bridge_behaves_like_a_real_card_on_wrong_pins(self):
        self.card.insert()
        try:
            mark = self.card.events_mark()
            wrong = self.card.pkcs11_tool("--login", "--pin", "000000", "-O", check=False)
            self.assertIn("CKR_PIN_INCORRECT", wrong.stdout + wrong.stderr)
            self.assertEqual(self.card.verify_count(mark), 1)
            self.assertEqual(self.card.pin_tries_left(), card_fixture.PIN_TRIES - 1)
            self.card.pkcs11_tool("--login", "--pin", "000000", "-O", check=False)
            self.assertIn("final user PIN try", self.card.pkcs11_tool("-L").stdout)
            self.card.pkcs11_tool("--login", "--pin", "000000", "-O", check=False)
            locked = self.card.pkcs11_tool("--login", "--pin", card_fixture.PIN, "-O", check=False)
            self.assertIn("CKR_PIN_LOCKED", locked.stdout + locked.stderr)
        finally:
            self.card.reset_pin()
            self.card.remove()

    def test_insert_remove_and_other_card_events(self):
        probe = Probe(self.card.env)
        try:
            probe.wait_for("removed", card_fixture.READER, 0)
            m = probe.mark()
            t0 = time.monotonic()
            self.card.insert()
            line = probe.wait_for("present", card_fixture.READER, m)
            self.assertRegex(line, r"\| 3b[0-9a-f]+$", "the ATR comes with the event")
            m = probe.mark()
            self.card.remove()
            probe.wait_for("removed", card_fixture.READER, m)
            self.assertLess(time.monotonic() - t0, 20)
            m = probe.mark()
            self.card.insert(other_card=True)
            probe.wait_for("present", card_fixture.READER, m)
            self.card.remove()
        finally:
            last = probe.stop()
        self.assertRegex(last, r"^stopped in \d+ ms$")
        self.assertLess(int(last.split()[2]), 2500, "stop() ends the monitor thread promptly")

    def test_pcscd_killed_and_restarted(self):
        self.card.insert()
        probe = Probe(self.card.env)
        try:
            probe.wait_for("present", card_fixture.READER, 0)
            m = probe.mark()
            self.card.stop_pcscd(kill=True)
            line = probe.wait_for("error", card_fixture.READER, m)
            self.assertIn("pcscd", line)
            time.sleep(1)  # a while without pcscd: the monitor retries with backoff, no busy loop
            m = probe.mark()
            self.card.start_pcscd()
            self.card.insert()
            probe.wait_for("present", card_fixture.READER, m, timeout=20)
        finally:
            probe.stop()
            if self.card.inserted():
                self.card.remove()


if __name__ == "__main__":
    harness.main()
