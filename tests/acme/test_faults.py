"""ACME issuer against a scripted fake ACME server (HTTPS on loopback): what each kind of CA
failure turns into (unreachable / rejected / misconfigured / pending), and that a pending
order is resumed with its cookie. The fake also checks the JWS protected headers it gets
(alg, nonce freshness, url, kid/jwk) and verifies each signature against the JWK that
registered the account, so a malformed request fails the test."""

import base64
import hashlib
import http.server
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_pebble import EXIT, acme_issue_path  # noqa: E402

NAME = "fake.example.test"


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeAcme:
    """Behaviour is a dict `script` tests change between runs; `log` records requests."""

    def __init__(self, tmp, ca):
        self.tmp = tmp
        self.ca = ca
        cert, key = ca.server_cert("fake-acme")
        self.port = harness.free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.script = {}
        self.log = []
        self.errors = []
        self.nonces = set()
        self.account_jwk = None
        self.csr_count = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.handle(self, "GET", None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                fake.handle(self, "POST", self.rfile.read(length))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- responses --

    def nonce(self):
        n = secrets.token_urlsafe(16)
        self.nonces.add(n)
        return n

    def send(self, h, status, body=b"", ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        h.send_response(status)
        h.send_header("Replay-Nonce", self.nonce())
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def problem(self, h, status, kind, detail, headers=()):
        self.send(h, status, {"type": "urn:ietf:params:acme:error:" + kind, "detail": detail},
                  "application/problem+json", headers)

    def raw(self, h, data):
        h.wfile.write(data)
        h.wfile.flush()
        h.close_connection = True

    def order(self, status):
        o = {"status": status, "identifiers": [{"type": "dns", "value": NAME}],
             "authorizations": [self.base + "/authz/1"], "finalize": self.base + "/order/1/finalize"}
        if status == "valid":
            o["certificate"] = self.base + "/cert/1"
        return o

    # -- JWS checks (what a real CA would refuse) --

    def check_jws(self, path, body):
        jws = json.loads(body)
        header = json.loads(b64d(jws["protected"]))
        if header.get("url") != self.base + path:
            self.errors.append(f"{path}: url {header.get('url')!r}")
        if header.get("nonce") not in self.nonces:
            self.errors.append(f"{path}: unknown or reused nonce")
        self.nonces.discard(header.get("nonce"))
        if header.get("alg") != "ES256":
            self.errors.append(f"{path}: alg {header.get('alg')!r}")
        if path == "/acct":
            if "jwk" not in header or "kid" in header:
                self.errors.append("newAccount must carry jwk, not kid")
            self.account_jwk = header.get("jwk")
        elif header.get("kid") != self.base + "/acct/1" or "jwk" in header:
            self.errors.append(f"{path}: kid {header.get('kid')!r}")
        self.verify(jws, path)
        payload = b64d(jws["payload"]) if jws["payload"] else b""
        return json.loads(payload) if payload else None

    def verify(self, jws, path):
        jwk = self.account_jwk
        if not jwk:
            self.errors.append(f"{path}: no account key known")
            return
        sig = b64d(jws["signature"])
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")

        def der_int(v):
            b = v.to_bytes((v.bit_length() + 8) // 8 or 1, "big")
            return b"\x02" + bytes([len(b)]) + b
        body = der_int(r) + der_int(s)
        der_sig = b"\x30" + bytes([len(body)]) + body
        point = b"\x04" + b64d(jwk["x"]) + b64d(jwk["y"])
        spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + point
        d = self.tmp.mkdir(f"verify-{secrets.token_hex(4)}")
        for name, data in (("k.der", spki), ("s.der", der_sig),
                           ("in", (jws["protected"] + "." + jws["payload"]).encode())):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "k.der"), "-keyform", "DER",
                               "-signature", os.path.join(d, "s.der"), os.path.join(d, "in")], capture_output=True)
        if done.returncode != 0:
            self.errors.append(f"{path}: JWS signature does not verify: {done.stdout!r} {done.stderr!r}")

    def bump(self, key):
        self.script[key] = self.script.get(key, 0) - 1
        return self.script[key] >= 0

    def handle(self, h, method, body):
        path = h.path
        self.log.append((method, path))
        s = self.script
        if method == "GET" and path == "/dir":
            mode = s.get("dir", "ok")
            if mode == "500":
                return self.send(h, 500, "<html>internal error</html>", "text/html")
            if mode == "garbage":
                return self.send(h, 200, "{this is not json", "application/json")
            if mode == "truncated":
                return self.raw(h, b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"newNonce\": \"https://")
            if mode == "not-http":
                return self.raw(h, b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            if mode == "huge":
                return self.send(h, 200, b"{" + b" " * (2 * 1024 * 1024) + b"}")
            if mode == "huge-unsized":
                return self.raw(h, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b" " * (2 * 1024 * 1024))
            if mode == "many-headers":
                return self.raw(h, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + b"X-Filler: y\r\n" * 300 +
                                b"\r\n{}")
            d = {"newNonce": self.base + "/nonce", "newAccount": self.base + "/acct",
                 "newOrder": self.base + "/order", "meta": {"termsOfService": self.base + "/tos"}}
            if mode == "ear":
                d["meta"]["externalAccountRequired"] = True
            return self.send(h, 200, d)
        if method == "GET" and path == "/nonce":
            return self.send(h, 204)
        if method != "POST":
            return self.send(h, 405)
        try:
            payload = self.check_jws(path, body)
        except (ValueError, KeyError) as e:
            self.errors.append(f"{path}: unreadable JWS: {e}")
            return self.problem(h, 400, "malformed", "unreadable JWS")
        if path == "/acct":
            if self.bump("acct_badnonce"):
                return self.problem(h, 400, "badNonce", "stale nonce")
            if not payload or payload.get("termsOfServiceAgreed") is not True:
                self.errors.append(f"newAccount payload {payload!r}")
            return self.send(h, 201, {"status": "valid"}, headers=[("Location", self.base + "/acct/1")])
        if path == "/order":
            mode = s.get("order", "ok")
            if mode == "429":
                return self.problem(h, 429, "rateLimited", "too many orders", headers=[("Retry-After", "120")])
            if mode == "rejected":
                return self.problem(h, 400, "rejectedIdentifier", "we do not issue for example.test")
            if payload != {"identifiers": [{"type": "dns", "value": NAME}]}:
                self.errors.append(f"newOrder payload {payload!r}")
            return self.send(h, 201, self.order("ready"), headers=[("Location", self.base + "/order/1")])
        if path == "/order/1/finalize":
            der = b64d(payload["csr"])
            csr = self.tmp.join("fake-finalized.csr")
            subprocess.run(["openssl", "req", "-inform", "DER", "-in", "/dev/stdin", "-out", csr], input=der, check=True)
            self.ca.issue_client_cert(csr, self.tmp.join("fake-issued.crt"))
            self.csr_count += 1
            return self.send(h, 200, self.order("processing"), headers=[("Retry-After", "1")])
        if path == "/order/1":
            if s.get("processing", 0) > 0:
                s["processing"] -= 1
                return self.send(h, 200, self.order("processing"), headers=[("Retry-After", "1")])
            return self.send(h, 200, self.order("valid"))
        if path == "/cert/1":
            if h.headers.get("Accept") != "application/pem-certificate-chain":
                self.errors.append(f"certificate Accept header {h.headers.get('Accept')!r}")
            mode = s.get("cert", "ok")
            if mode == "garbage":
                return self.send(h, 200, "-----BEGIN CERTIFICATE-----\nnot base64!\n", "application/pem-certificate-chain")
            if mode == "chunked":
                with open(self.tmp.join("fake-issued.crt")) as f, open(self.ca.cert) as g:
                    chain = (f.read() + g.read()).encode()
                h.send_response(200)
                h.send_header("Replay-Nonce", self.nonce())
                h.send_header("Transfer-Encoding", "chunked")
                h.send_header("Content-Type", "application/pem-certificate-chain")
                h.end_headers()
                for i in range(0, len(chain), 100):
                    part = chain[i:i + 100]
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                h.wfile.write(b"0\r\n\r\n")
                return
            with open(self.tmp.join("fake-issued.crt")) as f, open(self.ca.cert) as g:
                return self.send(h, 200, f.read() + g.read(), "application/pem-certificate-chain")
        return self.problem(h, 404, "malformed", "no such resource " + path)


class FaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir("keyward-acme-faults-")
        try:
            cls.ca = harness.TestCA(cls.tmp.join("ca"))
            cls.fake = FakeAcme(cls.tmp, cls.ca)
            cls.agent = harness.Agent(cls.tmp)
            cls.agent.start()
            cls.agent.create_key("client")
            cls.csr = cls.agent.csr("client", cls.tmp.join("client.csr"), subject=f"/CN={NAME}", sans=[f"dns:{NAME}"])
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "fake", None):
            cls.fake.stop()
        agent = getattr(cls, "agent", None)
        if agent:
            if agent.alive():
                agent.stop()
            agent.kill()
            agent.forget()
        cls.tmp.cleanup()

    def setUp(self):
        self.fake.script.clear()
        self.fake.errors.clear()
        self.fake.log.clear()

    def tearDown(self):
        self.assertEqual(self.fake.errors, [], "the fake CA saw malformed ACME requests")

    def issue(self, tag, directory=None, cookie=None, **extra):
        values = {"kind": "acme", "directory": directory or self.fake.base + "/dir", "ca_file": self.ca.cert,
                  "http01_listen": f"127.0.0.1:{harness.free_port()}", "timeout": 20, "request_timeout": 5}
        values.update(extra)
        config = self.tmp.write(f"issuer-{tag}.toml", "[issuer]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
        argv = [acme_issue_path(), "--socket", self.agent.socket, "--config", config,
                "--state-dir", self.tmp.join(f"state-{tag}"), "--csr", self.csr, "--key", "client",
                "--cert", self.tmp.join(f"{tag}.crt"), "--chain", self.tmp.join(f"{tag}-chain.pem")]
        if cookie:
            argv += ["--cookie", cookie]
        return harness.run(argv, check=False, timeout=120, context=self.agent.log_tail)

    def assertAnswer(self, done, kind, *fragments):
        self.assertEqual(done.rc, EXIT[kind], done.describe())
        self.assertTrue(done.stdout.startswith(kind + ": "), done.describe())
        for f in fragments:
            self.assertIn(f, done.stdout)

    def test_issue_through_the_fake(self):
        self.fake.script.update(acct_badnonce=2, cert="chunked")
        done = self.issue("ok")
        self.assertAnswer(done, "issued")
        harness.openssl("verify", "-CAfile", self.ca.cert, self.tmp.join("ok.crt"))
        self.assertEqual(self.fake.log.count(("POST", "/acct")), 3, "badNonce answers must be retried")

    def test_http_500_is_unreachable(self):
        self.fake.script["dir"] = "500"
        self.assertAnswer(self.issue("500"), "unreachable", "HTTP 500")

    def test_garbage_json_is_unreachable(self):
        self.fake.script["dir"] = "garbage"
        self.assertAnswer(self.issue("garbage"), "unreachable", "not JSON")

    def test_truncated_answer_is_unreachable(self):
        self.fake.script["dir"] = "truncated"
        self.assertAnswer(self.issue("truncated"), "unreachable", "truncated")

    def test_not_http_is_unreachable(self):
        self.fake.script["dir"] = "not-http"
        self.assertAnswer(self.issue("nothttp"), "unreachable", "not an HTTP")

    def test_oversized_answers_are_unreachable(self):
        for mode in ("huge", "huge-unsized", "many-headers"):
            with self.subTest(mode=mode):
                self.fake.script["dir"] = mode
                self.assertAnswer(self.issue(mode), "unreachable", "is too large")

    def test_silent_server_times_out(self):
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # accepts TCP (backlog) but never speaks TLS
            started = time.monotonic()
            done = self.issue("silent", directory=f"https://127.0.0.1:{silent.getsockname()[1]}/dir", request_timeout=2)
            elapsed = time.monotonic() - started
        self.assertAnswer(done, "unreachable", "timed out")
        self.assertLess(elapsed, 15)

    def test_rate_limit_is_unreachable_with_retry_after(self):
        self.fake.script["order"] = "429"
        done = self.issue("429")
        self.assertAnswer(done, "unreachable", "rateLimited", "rate limited")
        self.assertIn("retry_after: 120", done.stdout)

    def test_rejected_identifier_is_rejected(self):
        self.fake.script["order"] = "rejected"
        self.assertAnswer(self.issue("rejected"), "rejected", "rejectedIdentifier", "we do not issue")

    def test_external_account_binding_is_misconfigured(self):
        self.fake.script["dir"] = "ear"
        self.assertAnswer(self.issue("ear"), "misconfigured", "external account binding")

    def test_broken_certificate_download_is_unreachable(self):
        self.fake.script["cert"] = "garbage"
        self.assertAnswer(self.issue("badcert"), "unreachable", "certificate chain")

    def test_pending_then_resumed_with_the_cookie(self):
        self.fake.script["processing"] = 1000
        started = time.monotonic()
        done = self.issue("pending", timeout=4, request_timeout=2)
        self.assertLess(time.monotonic() - started, 30)
        self.assertAnswer(done, "pending", "still issuing")
        cookie = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("cookie: ")]
        self.assertEqual(cookie, [self.fake.base + "/order/1"], done.describe())
        self.assertIn("retry_after: ", done.stdout)
        finalized = self.fake.csr_count
        self.fake.script["processing"] = 1
        done = self.issue("pending", cookie=cookie[0])
        self.assertAnswer(done, "issued")
        self.assertEqual(self.fake.csr_count, finalized, "polling must not finalize a new order")
        self.assertNotIn(("POST", "/order"), self.fake.log[-6:], "polling must not create a new order")


if __name__ == "__main__":
    harness.main()
