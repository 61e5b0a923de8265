#!/usr/bin/env python3
"""Metrics (docs/monitoring.md): a real keywardd with an identity enrolled through a CA
helper, its /metrics endpoint scraped by a real Prometheus server started here (a PromQL
query answers the identity's expiry), `promtool check metrics` on the endpoint and on the
node_exporter textfile, signature and denial counters, and the HTTP server's limits against
truncated, garbage, oversized and idle requests."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Agent, TestCA, free_port, run, wait_until  # noqa: E402


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of the text format (labels without commas
    or escaped quotes in values, which is all these tests produce)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for pair in rest.rstrip("}").split('",'):
                if pair:
                    k, v = pair.split("=", 1)
                    labels[k] = v.strip('"')
        else:
            name = head
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def http_raw(port, data, timeout=10, shutdown=False):
    """Sends `data` to the endpoint and returns everything it answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class MetricsTest(harness.AgentTestCase):
    @classmethod
    def setUpClass(cls):
        cls.promtool = harness.require_program("promtool")
        cls.prometheus = harness.require_program("prometheus")
        super().setUpClass()

    @classmethod
    def make_agent(cls):
        cls.ca = TestCA(cls.tmp.join("ca"))
        cls.hdir = cls.tmp.mkdir("helper")
        cls.port = free_port()
        cls.prom_file = cls.tmp.join("textfile", "keyward.prom")
        os.makedirs(os.path.dirname(cls.prom_file))
        sock_dir = cls.tmp.public_dir("sock")
        cls.tmp.write("keyward.toml", f"""
[agent]
metrics_listen = "127.0.0.1:{cls.port}"
metrics_file = "{cls.prom_file}"
metrics_interval = "1s"
""" + harness.helper_identity_toml(cls.ca, cls.hdir))
        return Agent(cls.tmp, config=cls.tmp.join("keyward.toml"), socket=os.path.join(sock_dir, "agent.sock"),
                     socket_mode=0o666)

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return r.read().decode()

    def enrolled_view(self):
        def valid():
            v = self.agent.cli("identities", "show", "web", json=True).data
            return v if v["status"] == "valid" else None
        v = wait_until(valid, 60, 0.5)
        self.assertTrue(v, "identity web was not enrolled within 60 s\n" + self.agent.log_tail())
        return v

    def promtool_check(self, text, what):
        done = run([self.promtool, "check", "metrics"], input=text, check=False)
        self.assertEqual(done.rc, 0, f"promtool rejects the {what}:\n{done.describe()}")

    def test_identity_metrics_and_promtool(self):
        v = self.enrolled_view()

        def published():
            m = parse_metrics(self.scrape())
            return m if value(m, "keyward_certificate_not_after_seconds", identity="web") else None
        m = wait_until(published, 30, 0.5)
        self.assertTrue(m, "no keyward_certificate_not_after_seconds for web:\n" + self.scrape())
        self.assertEqual(value(m, "keyward_certificate_not_after_seconds", identity="web"), v["not_after_unix"])
        self.assertEqual(value(m, "keyward_certificate_not_before_seconds", identity="web"), v["not_before_unix"])
        self.assertEqual(value(m, "keyward_identity_status", identity="web", status="valid"), 1)
        self.assertEqual(value(m, "keyward_identity_status", identity="web", status="expired"), 0)
        self.assertEqual(value(m, "keyward_renewal_failures_total", identity="web"), 0)
        self.assertAlmostEqual(value(m, "keyward_renewal_last_success_timestamp_seconds", identity="web"),
                               time.time(), delta=120)
        self.assertEqual(value(m, "keyward_token_state", token="embedded", kind="pkcs11", state="present"), 1)
        self.assertTrue(any(k[0] == "keyward_build_info" for k in m))
        self.assertGreater(value(m, "keyward_uptime_seconds"), 0)
        self.promtool_check(self.scrape(), "endpoint's output")

        def file_has_identity():
            try:
                with open(self.prom_file) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if value(parse_metrics(text), "keyward_certificate_not_after_seconds", identity="web") else None
        text = wait_until(file_has_identity, 10, 0.2)
        self.assertTrue(text, f"{self.prom_file} lacks the identity's expiry")
        self.promtool_check(text, "textfile")
        self.assertEqual(oct(os.stat(self.prom_file).st_mode & 0o777), "0o644")

    def test_signatures_and_denials_counted(self):
        self.agent.create_key("m1")
        digest = "00" * 32
        for _ in range(3):
            self.agent.cli("sign", "m1", "--scheme", "ecdsa_secp256r1_sha256", "--digest", digest,
                           "--out", self.tmp.join("sig.bin"))
        denied = self.agent.cli("sign", "m1", "--scheme", "ecdsa_secp256r1_sha256", "--digest", digest,
                                user=harness.NOBODY_UID, check=False)
        self.assertEqual(denied.rc, harness.EXIT_DENIED, denied.describe())
        m = parse_metrics(self.scrape())
        self.assertEqual(value(m, "keyward_signatures_total", key="m1", result="ok"), 3)
        self.assertEqual(value(m, "keyward_signature_duration_seconds_count", key="m1"), 3)
        self.assertEqual(value(m, "keyward_signature_duration_seconds_bucket", key="m1", le="+Inf"), 3)
        self.assertGreater(value(m, "keyward_signature_duration_seconds_sum", key="m1"), 0)
        self.assertGreaterEqual(value(m, "keyward_denials_total", uid=str(harness.NOBODY_UID)), 1)
        self.promtool_check(self.scrape(), "endpoint's output with signatures")

    def test_prometheus_scrapes_expiry(self):
        v = self.enrolled_view()
        data = self.tmp.mkdir("prom-data")
        web = free_port()
        cfg = self.tmp.write("prometheus.yml", f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: keyward
    static_configs:
      - targets: ["127.0.0.1:{self.port}"]
""")
        log_path = self.tmp.join("prometheus.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([self.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                                     f"--web.listen-address=127.0.0.1:{web}"], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            def prom_log():
                with open(log_path, errors="replace") as f:
                    return f.read()
            harness.wait_for_port(web, proc, "prometheus", prom_log, timeout=60)
            query = urllib.parse.urlencode({"query": 'keyward_certificate_not_after_seconds{identity="web"}'})

            def answered():
                # Prometheus listens before its storage is ready and answers 503 until then.
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?{query}", timeout=5) as r:
                        doc = json.load(r)
                except urllib.error.HTTPError as e:
                    if e.code == 503:
                        return None
                    raise
                return doc["data"]["result"] if doc.get("status") == "success" and doc["data"]["result"] else None
            result = wait_until(answered, 60, 0.5)
            self.assertTrue(result, "prometheus has no keyward_certificate_not_after_seconds\n" + prom_log()[-3000:])
            self.assertEqual(float(result[0]["value"][1]), v["not_after_unix"])
            self.assertEqual(result[0]["metric"]["job"], "keyward")
        finally:
            harness.end_process(proc)

    # -- the HTTP server against bad clients --

    def test_bad_requests(self):
        self.assertIn(b" 400 ", http_raw(self.port, b"\x00\xffgarbage\r\n\r\n"))
        self.assertIn(b" 400 ", http_raw(self.port, b"GET /metrics SMTP/9\r\n\r\n"))
        self.assertIn(b" 405 ", http_raw(self.port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.assertIn(b" 404 ", http_raw(self.port, b"GET /secrets HTTP/1.1\r\n\r\n"))
        head = http_raw(self.port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n"), head[:200])
        # Oversized: a head that never ends.
        self.assertIn(b" 431 ", http_raw(self.port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000))
        # Truncated: half a request line, then the client stops sending; closed without an answer.
        self.assertEqual(http_raw(self.port, b"GET /met", shutdown=True), b"")
        self.assertTrue(self.agent.alive())
        self.assertIn("keyward_build_info", self.scrape())

    def test_idle_clients_time_out_and_do_not_starve_scrapes(self):
        idle = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(20)]
        try:
            started = time.monotonic()
            text = self.scrape()  # waits in the backlog until idle ones are dropped
            self.assertIn("keyward_build_info", text)
            self.assertLess(time.monotonic() - started, 9)
            # The server closed the idle ones (5 s without a request head).
            idle[0].settimeout(10)
            self.assertEqual(idle[0].recv(10), b"")
        finally:
            for s in idle:
                s.close()


if __name__ == "__main__":
    harness.main()
