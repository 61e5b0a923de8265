"""A smartcard for the pcsc tests: real pcscd, vsmartcard's vpcd reader driver and a libcacard virtual CAC card.

    card keys (RSA-2048, made on a SoftHSM2 token, certificates from a test CA)
      -> NSS database (modutil -add: the SoftHSM2 module)  -> libcacard (in card_bridge)
      -> vpcd (TCP, inside pcscd's private network namespace)  -> pcscd  -> OpenSC opensc-pkcs11.so

pcscd runs in the foreground inside `unshare -rmn`: a private mount namespace with a tmpfs on /run for its compiled-in
socket directory (bind-mounted from the temp dir, so clients reach it through PCSCLITE_CSOCK_NAME), and a private
network namespace because vpcd listens on every interface. The bridge joins that network namespace with nsenter.
Removing the card is ending the bridge (vpcd sees its connection close); inserting it is starting one.

    card = CardFixture(tmp)            # builds the token, the keys and certificates, the NSS database
    card.start_pcscd(); card.insert()  # reader "Virtual PCD 00 00" with the card in it
    card.env                           # PCSCLITE_CSOCK_NAME for the agent and the tools
    card.remove(); card.insert(other_card=True)   # another serial, the same keys
    card.restart_pcscd()               # the card comes back in the reader of the new pcscd
    card.verify_count(since)           # VERIFY commands carrying a PIN that reached the card
    card.stall(); card.unstall()       # the card stops answering (stays in the reader), then answers again
    card.stop()

KEYWARD_CARD_TRACE=1 makes the bridge log every APDU (card/bridge.log in the temp dir; KEYWARD_KEEP_TMP=1 keeps it).
The bridge keeps the card's PIN retry counter in a file (3 tries, 63Cx then 6983 like a real card); reset_pin()
restores it. Standard library only, plus tests/integration/harness.py.
"""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..",
                                                                                  "..")), "tests", "integration"))
import harness  # noqa: E402

OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER = "Virtual PCD 00 00"
# Inside pcscd's own network namespace any port is free; vpcd's first reader listens on it.
VPCD_PORT = 35963
PIN = "123456"
SO_PIN = "77777777"
PIN_TRIES = 3
# OpenSC shows libcacard's CAC keys with two-byte ids; the first certificate is the "CAC ID" one.
KEY_ID_HEX = "0001"
KEY_URI_ID = "%00%01"
CARD_LABEL = "card-user"


def bridge_path():
    return harness.require_program(os.path.join(harness.bin_dir(), "tests", "pcsc", "card_bridge"))


class CardFixture:
    def __init__(self, tmp):
        self.tmp = tmp
        self.dir = tmp.mkdir("card")
        self.pcscd = None
        self.bridge = None
        self.bridge_log = os.path.join(self.dir, "bridge-events.log")
        self.pin_state = os.path.join(self.dir, "pin-tries")
        self.stall_file = os.path.join(self.dir, "stall")  # while it exists, the card answers nothing
        self.run_dir = os.path.join(self.dir, "pcscd-run")
        self.reader_conf = os.path.join(self.dir, "reader.conf.d")
        self.softhsm_conf = os.path.join(self.dir, "softhsm2.conf")
        for program in ("pcscd", "unshare", "nsenter", "ip", "modutil", "softhsm2-util", "pkcs11-tool", "opensc-tool"):
            harness.require_program(program)
        for path in (OPENSC_MODULE, VPCD_DRIVER, harness.SOFTHSM_MODULE):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: install the packages in scripts/packages.txt")
        self._make_card()
        self.reset_pin()

    # -- the card's contents --

    def _make_card(self):
        d = self.dir
        os.makedirs(os.path.join(d, "tokens"))
        with open(self.softhsm_conf, "w") as f:
            f.write(f"directories.tokendir = {d}/tokens\nobjectstore.backend = file\nslots.removable = true\nlog.level = ERROR\n")
        env = {"SOFTHSM2_CONF": self.softhsm_conf}
        m = harness.SOFTHSM_MODULE
        harness.run(["softhsm2-util", "--init-token", "--free", "--label", "card", "--so-pin", SO_PIN, "--pin", PIN],
                    env=env)
        self.ca = harness.TestCA(os.path.join(d, "ca"))  # issues the card's and the test servers' certificates
        self.ca_cert = self.ca.cert
        harness.run(["pkcs11-tool", "--module", m, "--token-label", "card", "--login", "--pin", PIN, "--keypairgen",
                     "--key-type", "rsa:2048", "--id", "01", "--label", "card key"], env=env)
        # The certificate request is signed on the token (the key never leaves it), through libp11's engine.
        csr = os.path.join(d, "card.csr")
        harness.run(["openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key",
                     f"pkcs11:token=card;id=%01;type=private;pin-value={PIN}", "-subj", f"/CN={CARD_LABEL}",
                     "-out", csr], env={**env, "PKCS11_MODULE_PATH": m})
        self.cert_pem = self.ca.issue_client_cert(csr, os.path.join(d, "card.pem"))
        self.cert_der = os.path.join(d, "card.der")
        harness.openssl("x509", "-in", self.cert_pem, "-outform", "DER", "-out", self.cert_der)
        harness.run(["pkcs11-tool", "--module", m, "--token-label", "card", "--login", "--pin", PIN, "--write-object",
                     self.cert_der, "--type", "cert", "--id", "01", "--label", "card key"], env=env)
        self.nssdb = os.path.join(d, "nssdb")
        os.makedirs(self.nssdb)
        harness.run(["modutil", "-create", "-dbdir", f"sql:{self.nssdb}", "-force"], env=env)
        harness.run(["modutil", "-add", "SoftHSM", "-dbdir", f"sql:{self.nssdb}", "-libfile", m, "-force"], env=env)
        os.makedirs(self.reader_conf)
        with open(os.path.join(self.reader_conf, "vpcd"), "w") as f:
            f.write(f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{VPCD_PORT:X}\n'
                    f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{VPCD_PORT:X}\n")

    @property
    def env(self):
        """What a PC/SC client (the agent, pkcs11-tool) needs to reach this pcscd."""
        return {"PCSCLITE_CSOCK_NAME": os.path.join(self.run_dir, "pcscd.comm")}

    def reset_pin(self):
        with open(self.pin_state, "w") as f:
            f.write(f"{PIN_TRIES}\n")

    def pin_tries_left(self):
        with open(self.pin_state) as f:
            return int(f.read().strip())

    # -- pcscd --

    def start_pcscd(self, timeout=15):
        assert self.pcscd is None or self.pcscd.poll() is not None, "pcscd already running"
        os.makedirs(self.run_dir, exist_ok=True)
        sock = self.env["PCSCLITE_CSOCK_NAME"]
        if os.path.exists(sock):
            os.unlink(sock)
        script = (f"ip link set lo up && mount -t tmpfs none /run && mkdir /run/pcscd && "
                  f"mount --bind '{self.run_dir}' /run/pcscd && exec pcscd -f -c '{self.reader_conf}'")
        log = open(os.path.join(self.dir, "pcscd.log"), "ab")
        self.pcscd = subprocess.Popen(["unshare", "-rmn", "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=log, start_new_session=True)
        log.close()

        def ready():
            if self.pcscd.poll() is not None:
                raise AssertionError(f"pcscd exited with {self.pcscd.returncode}:\n{self.pcscd_log()[-3000:]}")
            return os.path.exists(sock) and READER in self.readers()
        if not harness.wait_until(ready, timeout, 0.1):
            raise AssertionError(f"pcscd shows no reader {READER!r} after {timeout}s:\n{self.pcscd_log()[-3000:]}")

    def stop_pcscd(self, kill=False):
        """Ends pcscd (SIGKILL with kill=True, as a crash would); the card's bridge goes with it."""
        if self.pcscd is not None and self.pcscd.poll() is None:
            if kill:
                self.pcscd.kill()
                self.pcscd.wait()
            else:
                harness.end_process(self.pcscd)
        self.pcscd = None
        self._end_bridge()

    def restart_pcscd(self, kill=True):
        """pcscd dies and comes back; a card that was in the reader is in it again afterwards."""
        had_card = self.inserted()
        other = self._other_card
        self.stop_pcscd(kill=kill)
        self.start_pcscd()
        if had_card:
            self.insert(other_card=other)

    def pcscd_log(self):
        try:
            with open(os.path.join(self.dir, "pcscd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def readers(self):
        """opensc-tool's reader list: {reader name: card present?}."""
        done = harness.run(["opensc-tool", "-l"], env=self.env, check=False, timeout=20)
        readers = {}
        for line in done.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0].isdigit() and parts[1] in ("Yes", "No"):
                name = parts[2].strip()
                name = name[len("PIN pad"):].strip() if name.startswith("PIN pad") else name
                readers[name] = parts[1] == "Yes"
        return readers

    # -- the card --

    _other_card = False

    def insert(self, other_card=False, sign_delay_ms=0, timeout=20):
        """Puts the card into the reader (other_card: a card with another serial, the same keys) and waits until
        PC/SC shows it."""
        assert self.pcscd is not None and self.pcscd.poll() is None, "start pcscd first"
        assert not self.inserted(), "the card is already in the reader"
        argv = ["nsenter", "-t", str(self.pcscd.pid), "-U", "-n", "--preserve-credentials", bridge_path(),
                "--nssdb", self.nssdb, "--port", str(VPCD_PORT), "--pin-state", self.pin_state,
                "--pin-tries", str(PIN_TRIES), "--log", self.bridge_log, "--stall-file", self.stall_file]
        if other_card:
            argv += ["--serial-xor", "0x5a"]
        if sign_delay_ms:
            argv += ["--sign-delay-ms", str(sign_delay_ms)]
        if os.environ.get("KEYWARD_CARD_TRACE") == "1":  # every APDU into bridge.log, for debugging by hand
            argv += ["--trace"]
        log = open(os.path.join(self.dir, "bridge.log"), "ab")
        env = dict(os.environ, SOFTHSM2_CONF=self.softhsm_conf)
        self.bridge = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                       start_new_session=True)
        log.close()
        self._other_card = other_card

        def present():
            if self.bridge.poll() is not None:
                raise AssertionError(f"card_bridge exited with {self.bridge.returncode}:\n{self.bridge_text()}")
            return self.readers().get(READER)
        if not harness.wait_until(present, timeout, 0.1):
            raise AssertionError(f"the card is not in {READER!r} after {timeout}s:\n{self.bridge_text()}")

    def remove(self, timeout=20):
        """Takes the card out of the reader and waits until PC/SC shows the reader empty."""
        self._end_bridge()
        if self.pcscd is not None and self.pcscd.poll() is None:
            if not harness.wait_until(lambda: self.readers().get(READER) is False, timeout, 0.1):
                raise AssertionError(f"PC/SC still shows a card in {READER!r} {timeout}s after removal")

    def stall(self):
        """The card stops answering (it stays in the reader): commands sent to it wait until unstall()."""
        open(self.stall_file, "w").close()

    def unstall(self):
        if os.path.exists(self.stall_file):
            os.unlink(self.stall_file)

    def inserted(self):
        return self.bridge is not None and self.bridge.poll() is None

    def _end_bridge(self):
        if self.bridge is not None:
            if self.bridge.poll() is None:
                self.bridge.send_signal(signal.SIGKILL)
            self.bridge.wait()
            self.bridge = None

    def bridge_text(self):
        try:
            with open(os.path.join(self.dir, "bridge.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except FileNotFoundError:
            return ""

    # -- what the card saw --

    def events_mark(self):
        return os.path.getsize(self.bridge_log) if os.path.exists(self.bridge_log) else 0

    def events(self, since=0):
        if not os.path.exists(self.bridge_log):
            return []
        with open(self.bridge_log) as f:
            f.seek(since)
            return f.read().splitlines()

    def verify_count(self, since=0):
        """How many VERIFY commands carrying a PIN reached the card (right, wrong or refused as blocked)."""
        return sum(1 for e in self.events(since) if e.startswith("verify "))

    # -- OpenSC directly --

    def pkcs11_tool(self, *args, check=True, timeout=60):
        return harness.run(["pkcs11-tool", "--module", OPENSC_MODULE, *args], env=self.env, check=check,
                           timeout=timeout)

    def stop(self):
        self.unstall()
        self._end_bridge()
        self.stop_pcscd()
