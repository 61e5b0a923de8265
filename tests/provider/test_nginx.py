#!/usr/bin/env python3
"""nginx 1.22 as a TLS *client*: proxy_ssl_certificate_key with `engine:keyward:NAME` (the
engine, initialised from OPENSSL_CONF) and with a key-reference file path (the provider,
activated by OPENSSL_CONF), in front of an upstream `openssl s_server` that demands a
client certificate. Workers run as nobody (uid 65534), which the agent's key policy
allows; requests through several forked workers all succeed."""

import concurrent.futures
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import provider_helpers as ph
from provider_helpers import harness

WORKERS = 4
REQUESTS = 24


class NginxTest(harness.AgentTestCase):

    @classmethod
    def make_agent(cls):
        cls.public = cls.tmp.public_dir("public")
        config = cls.tmp.write("keyward.toml", "".join(
            f"[keys.{name}]\nallow_users = [{harness.NOBODY_UID}]\n\n" for name in ("nginx-ec", "nginx-rsa")))
        return harness.Agent(cls.tmp, socket=os.path.join(cls.public, "agent.sock"), socket_mode=0o666,
                             config=config)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = harness.require_program("nginx")
        cls.ca = harness.TestCA(cls.tmp.join("ca"))
        cls.ec = ph.ClientKey(cls.agent, cls.ca, cls.tmp, "nginx-ec", "ec-p256")
        cls.rsa = ph.ClientKey(cls.agent, cls.ca, cls.tmp, "nginx-rsa", "rsa-2048")
        cls.cnf = ph.write_engine_cnf(cls.tmp, cls.agent.socket, name="nginx-openssl.cnf", with_provider=True)

    def write_conf(self, upstream_port, port):
        d = self.tmp.mkdir("nginx", 0o755)

        def location(path, key, keyref_or_engine):
            return (f"    location /{path}/ {{\n"
                    f"      proxy_pass https://127.0.0.1:{upstream_port}/;\n"
                    f"      proxy_ssl_certificate {key.cert};\n"
                    f"      proxy_ssl_certificate_key {keyref_or_engine};\n"
                    f"      proxy_ssl_trusted_certificate {self.ca.cert};\n"
                    f"      proxy_ssl_verify on;\n      proxy_ssl_name localhost;\n"
                    f"      proxy_ssl_session_reuse off;\n    }}\n")

        conf = (f"daemon off;\nmaster_process on;\nuser nobody nogroup;\nworker_processes {WORKERS};\n"
                f"pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
                f"events {{ worker_connections 64; }}\n"
                f"http {{\n  log_format keyward '$pid $status $request_uri';\n"
                f"  access_log {d}/access.log keyward;\n"
                + "".join(f"  {t}_temp_path {d}/{t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + f"  server {{\n    listen 127.0.0.1:{port} reuseport;\n"
                + location("engine", self.ec, f"engine:keyward:{self.ec.name}")
                + location("keyref", self.rsa, self.rsa.keyref)
                + "  }\n}\n")
        return d, self.tmp.write("nginx/nginx.conf", conf)

    def start_nginx(self, d, conf, port):
        env = dict(os.environ)
        env["OPENSSL_CONF"] = self.cnf
        env.pop("KEYWARD_SOCKET", None)
        proc = subprocess.Popen([self.nginx, "-c", conf, "-p", d], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if proc.poll() is not None:
                return "exited"
            try:
                with open(os.path.join(d, "error.log")) as f:
                    return "ready" if f.read().count("start worker process") >= WORKERS else None
            except FileNotFoundError:
                return None

        state = harness.wait_until(up, 30)
        if state != "ready":
            self.stop_nginx(proc)
            self.fail(f"nginx did not start ({state}):\n{proc.stdout.read().decode(errors='replace')}\n"
                      f"{self.error_log(d)}")
        time.sleep(0.3)  # every worker listening on its reuseport socket
        return proc

    @staticmethod
    def stop_nginx(proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGQUIT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    @staticmethod
    def error_log(d):
        try:
            with open(os.path.join(d, "error.log")) as f:
                return "--- nginx error.log ---\n" + f.read()[-4000:]
        except FileNotFoundError:
            return "(no nginx error.log)"

    def fetch(self, port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}/", timeout=60) as r:
            return r.status, r.read().decode("utf-8", "replace")

    def test_requests_through_several_workers(self):
        port = harness.free_port()
        with ph.www_server(self.ca) as upstream:
            d, conf = self.write_conf(upstream.port, port)
            proc = self.start_nginx(d, conf, port)
            try:
                before = self.agent.signatures()
                jobs = [("engine", self.ec.name), ("keyref", self.rsa.name)] * (REQUESTS // 2)
                with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                    results = list(pool.map(lambda job: (job, self.fetch(port, job[0])), jobs))
                for (path, name), (status, body) in results:
                    with self.subTest(path=path):
                        self.assertEqual(status, 200, body + self.error_log(d))
                        self.assertIn(f"Subject: CN={name}", body, self.error_log(d))
                self.assertGreaterEqual(self.agent.signatures() - before, REQUESTS)
            finally:
                self.stop_nginx(proc)
            with open(os.path.join(d, "access.log")) as f:
                lines = [l.split() for l in f if l.strip()]
            pids = {pid for pid, status, uri in lines if status == "200"}
            self.assertEqual(len([l for l in lines if l[1] == "200"]), REQUESTS, "\n".join(map(" ".join, lines)))
            self.assertGreaterEqual(len(pids), 2, f"all requests went through one worker: {pids}")
            self.assertNotRegex(self.error_log(d), r"\[(crit|alert|emerg)\]")

    def test_workers_recover_when_the_agent_restarts(self):
        port = harness.free_port()
        with ph.www_server(self.ca) as upstream:
            d, conf = self.write_conf(upstream.port, port)
            proc = self.start_nginx(d, conf, port)
            try:
                for path in ("engine", "keyref"):
                    self.assertEqual(self.fetch(port, path)[0], 200, self.error_log(d))
                self.agent.stop()
                for path in ("engine", "keyref"):
                    started = time.monotonic()
                    with self.assertRaises(urllib.error.HTTPError) as failure:
                        self.fetch(port, path)
                    self.assertEqual(failure.exception.code, 502)
                    self.assertLess(time.monotonic() - started, 10)
                self.assertRegex(self.error_log(d), r"keyward( engine)?: agent not reachable at " + re.escape(self.agent.socket))
                self.agent.start()
                before = self.agent.signatures()
                for _ in range(2 * WORKERS):
                    for path, key in (("engine", self.ec), ("keyref", self.rsa)):
                        status, body = self.fetch(port, path)
                        self.assertEqual(status, 200, self.error_log(d))
                        self.assertIn(f"Subject: CN={key.name}", body)
                self.assertGreaterEqual(self.agent.signatures() - before, 4 * WORKERS)
            finally:
                self.stop_nginx(proc)
                if not self.agent.alive():
                    self.agent.start()


if __name__ == "__main__":
    harness.main()
