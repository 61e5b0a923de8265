"""An issuing CMP CA for tests, built around OpenSSL 3.0's own CMP server (`openssl cmp
-port`, the "mock server").

That server does all of CMP: it checks the request's protection (PBM with the shared
secret, or a signature chaining to -srv_trusted), the proof of possession, polling,
certConf, and signs its answers with an RA certificate. What it cannot do is issue: it
answers every request with one certificate fixed at start (-rsp_cert), and for a kur
that certificate must carry the old certificate's issuer and serial. So this front end,
on 127.0.0.1, reads each new certificate request (ir/cr/kur), issues a certificate for
the public key it names (subject and extensions set by the test, one fixed serial),
restarts the server with that answer, and forwards the bytes both ways. Follow-up
messages of the same transaction (pollReq, certConf) go to the same server instance.

Faults for tests (`CmpCa.mode`): "issue", "poll" (mock_args -poll_count/-check_after),
"reject" (PKIStatus rejection), "wrong_key" (a certificate for another key), "garbage"
(random bytes with HTTP 200), "http500", "hold" (wait for release() before answering).
"""

import http.server
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.request

import harness

# PKIBody choice tags (RFC 4210 §5.1.2) as they appear on the wire (context, constructed).
BODY_NAMES = {0xA0: "ir", 0xA1: "ip", 0xA2: "cr", 0xA3: "cp", 0xA4: "p10cr", 0xA7: "kur", 0xA8: "kup",
              0xAB: "rr", 0xAC: "rp", 0xB3: "pkiconf", 0xB5: "genm", 0xB7: "error", 0xB8: "certConf", 0xB9: "pollReq", 0xBA: "pollRep"}
CERT_REQUESTS = {"ir", "cr", "kur"}
OID_PBM = bytes.fromhex("06092a864886f67d07420d")          # 1.2.840.113533.7.66.13 PasswordBasedMac
OID_ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")   # 1.2.840.10045.4.3.2
FIXED_SERIAL = "0x4b57"  # every certificate: a kur's oldCertId must match the mock's answer


def der_read(buf, i):
    """(tag, content start, content end) of the DER element at i."""
    if i + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, length = buf[i], buf[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or i + n > len(buf):
            raise ValueError("bad DER length")
        length = int.from_bytes(buf[i:i + n], "big")
        i += n
    if i + length > len(buf):
        raise ValueError("truncated DER")
    return tag, i, i + length


def der_children(buf, start, end):
    i = start
    while i < end:
        tag, s, e = der_read(buf, i)
        yield tag, s, e
        i = e


def der_length(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def parse_message(body):
    """(body name, requested SubjectPublicKeyInfo DER or None) of a PKIMessage."""
    _, s, e = der_read(body, 0)
    parts = list(der_children(body, s, e))
    tag, bs, be = parts[1]  # header, body, ...
    name = BODY_NAMES.get(tag, f"tag-{tag:#x}")
    spki = None
    if name in CERT_REQUESTS:
        # [n] CertReqMessages -> CertReqMsg -> CertRequest -> (certReqId, CertTemplate)
        _, ms, me = next(der_children(body, bs, be))
        _, cs, ce = next(der_children(body, ms, me))
        _, rs, re_ = next(der_children(body, cs, ce))
        fields = list(der_children(body, rs, re_))
        _, ts, te = fields[1]
        for ftag, fs, fe in der_children(body, ts, te):
            if ftag == 0xA6:  # publicKey [6] IMPLICIT SubjectPublicKeyInfo
                content = body[fs:fe]
                spki = b"\x30" + der_length(len(content)) + content
    return name, spki


class CmpCa:
    def __init__(self, tmp, ca, subject, sans, days=2, secret="keyward-test-secret", reference="keyward-test"):
        self.tmp, self.ca, self.subject, self.sans, self.days = tmp, ca, subject, sans, days
        self.dir = tmp.mkdir("cmp-ca")
        self.secret, self.reference = secret, reference
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w") as f:
            f.write(secret + "\n")
        os.chmod(self.secret_file, 0o600)
        self.ra_cert, self.ra_key = self._make_ra_cert()
        self.mode = "issue"
        self.mock_args = []
        self.messages = []        # [(body name, request bytes)] in arrival order
        self.issued = []          # paths of the certificates handed to the mock
        self.released = threading.Event()
        self.held = threading.Event()
        self._lock = threading.Lock()
        self._mock = None
        self._mock_port = None
        self._count = 0
        self._server = None
        self.port = 0
        self.start()
        self.url = f"http://127.0.0.1:{self.port}/pkix/"

    def start(self):
        """Listens (again, on the same port after stop())."""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # -- fixture --

    def _make_ra_cert(self):
        key = os.path.join(self.dir, "ra.key")
        csr = os.path.join(self.dir, "ra.csr")
        cert = os.path.join(self.dir, "ra.crt")
        ext = os.path.join(self.dir, "ra.ext")
        harness.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-subj", "/CN=keyward test CMP RA", "-out", csr)
        with open(ext, "w") as f:  # a CMP signer needs digitalSignature (keyCertSign alone is refused)
            f.write("[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
        harness.openssl("x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-set_serial", "77",
                        "-days", "2", "-extfile", ext, "-extensions", "v3", "-out", cert)
        return cert, key

    def issue_for(self, spki_der):
        """A certificate from the test CA for the key in `spki_der`, with the test's subject and SANs."""
        self._count += 1
        n = self._count
        pub_der = os.path.join(self.dir, f"req-{n}.der")
        pub = os.path.join(self.dir, f"req-{n}.pub")
        with open(pub_der, "wb") as f:
            f.write(spki_der)
        harness.openssl("pkey", "-pubin", "-inform", "DER", "-in", pub_der, "-out", pub)
        if self.mode == "wrong_key":
            other = os.path.join(self.dir, f"other-{n}.key")
            harness.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other)
            harness.openssl("pkey", "-in", other, "-pubout", "-out", pub)
        ext = os.path.join(self.dir, f"cert-{n}.ext")
        sans = ",".join(s.replace("dns:", "DNS:", 1) for s in self.sans)
        with open(ext, "w") as f:
            f.write("[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    f"extendedKeyUsage=clientAuth\nsubjectAltName={sans}\nauthorityKeyIdentifier=keyid\n")
        cert = os.path.join(self.dir, f"cert-{n}.pem")
        harness.openssl("x509", "-new", "-subj", self.subject, "-force_pubkey", pub, "-CA", self.ca.cert,
                        "-CAkey", self.ca.key, "-set_serial", FIXED_SERIAL, "-days", str(self.days),
                        "-extfile", ext, "-extensions", "v3", "-out", cert)
        self.issued.append(cert)
        return cert

    def _start_mock(self, rsp_cert):
        self._stop_mock()
        self._mock_port = harness.free_port()
        log = open(os.path.join(self.dir, "mock.log"), "a")
        args = ["openssl", "cmp", "-port", str(self._mock_port), "-srv_ref", self.reference,
                "-srv_secret", "file:" + self.secret_file, "-srv_cert", self.ra_cert, "-srv_key", self.ra_key,
                "-srv_trusted", self.ca.cert, "-rsp_cert", rsp_cert, "-rsp_capubs", self.ca.cert]
        if self.mode == "reject":
            args += ["-pkistatus", "2", "-failure", "2", "-statusstring", "keyward test CA says no"]
        args += self.mock_args
        log_start = log.tell()
        self._mock = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        # Ready when it logs ACCEPT; a probe connection would stall the single-threaded server.
        path = os.path.join(self.dir, "mock.log")
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(path) as f:
                f.seek(log_start)
                if "ACCEPT" in f.read():
                    return
            if self._mock.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("the CMP mock server did not start:\n" + open(path).read()[-2000:])

    def _stop_mock(self):
        if self._mock and self._mock.poll() is None:
            os.killpg(self._mock.pid, signal.SIGKILL)
            self._mock.wait()
        self._mock = None

    def _forward(self, body):
        request = urllib.request.Request(f"http://127.0.0.1:{self._mock_port}/pkix/", data=body, method="POST",
                                         headers={"Content-Type": "application/pkixcmp"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def answer(self, body):
        """(HTTP status, bytes) for one request from the agent."""
        try:
            name, spki = parse_message(body)
        except (ValueError, IndexError, StopIteration):
            name, spki = "unparsable", None
        with self._lock:
            self.messages.append((name, body))
            mode = self.mode
        if mode == "hold" and name in CERT_REQUESTS:  # outside the lock: tests look meanwhile
            self.held.set()
            self.released.wait(120)
        with self._lock:
            if mode == "http500":
                return 500, b"internal error\n"
            if mode == "garbage":
                return 200, secrets.token_bytes(300)
            if name in CERT_REQUESTS:
                if spki is None:
                    return 400, b"no public key in the request\n"
                self._start_mock(self.issue_for(spki))
            if self._mock is None:
                return 503, b"no transaction\n"
            return 200, self._forward(body)

    def _handler_class(self):
        ca = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    status, data = ca.answer(body)
                except Exception as e:  # noqa: BLE001 - the test sees it in the agent's outcome and here
                    status, data = 502, f"front end error: {e}\n".encode()
                    print("cmp_ca:", e, flush=True)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/pkixcmp")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the agent went away meanwhile (a test killed it)

            def log_message(self, *args):
                pass

        return Handler

    # -- for tests --

    def names(self):
        with self._lock:
            return [n for n, _ in self.messages]

    def requests(self, name):
        with self._lock:
            return [b for n, b in self.messages if n == name]

    def release(self):
        self.released.set()

    def stop(self):
        """No server on the port any more (connection refused) until start()."""
        self.released.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._stop_mock()

    close = stop
