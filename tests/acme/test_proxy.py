"""The ACME issuer through a real forward proxy on loopback: tinyproxy (Debian package),
started here with its own config and log in a temp dir, in front of a real pebble.

- an explicit `proxy` in the issuer table: the issuance tunnels through it (tinyproxy's log
  shows the CONNECT to pebble's port), even with NO_PROXY naming pebble's host in the
  environment, and one tunnel serves the whole issuance (the connection is reused);
- no `proxy` in the table: the environment's https_proxy is honoured;
- `no_proxy` in the table naming pebble's host: the proxy is bypassed;
- the proxy stopped: the attempt is unreachable, and the message names the proxy.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ["KEYWARD_SOURCE_DIR"], "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_pebble import EXIT, AcmeTestBase  # noqa: E402

# What a workstation or CI may have set; each test states the proxy environment it wants.
NO_PROXY_ENV = {name: None for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
                                        "ALL_PROXY", "no_proxy", "NO_PROXY")}


class Tinyproxy:
    """tinyproxy in the foreground on a free loopback port, allowing CONNECT to one port
    (any port when connect_port is None). Also used by tests/lifecycle/test_cmp.py."""

    def __init__(self, tmp, connect_port=None):
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp.join("tinyproxy.log")
        config = (f"Port {self.port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{self.log_path}\"\nLogLevel Info\n"
                  "MaxClients 16\nAllow 127.0.0.1\n" + (f"ConnectPort {connect_port}\n" if connect_port else ""))
        self.config_path = tmp.write("tinyproxy.conf", config)
        self.out = open(tmp.join("tinyproxy.out"), "ab")
        self.proc = subprocess.Popen([harness.require_program("tinyproxy"), "-d", "-c", self.config_path],
                                     stdout=self.out, stderr=subprocess.STDOUT)

        harness.wait_for_port(self.port, self.proc, "tinyproxy", self.log_text)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self, request_line_start):
        """How many requests whose line starts so ("CONNECT 127.0.0.1:14000 ") the proxy logged."""
        return len(re.findall(r"Request \(file descriptor \d+\): " + re.escape(request_line_start), self.log_text()))

    def connects(self, target_port):
        """How many CONNECT requests to 127.0.0.1:target_port the proxy has logged."""
        return self.requests(f"CONNECT 127.0.0.1:{target_port} ")

    def stop(self):
        harness.end_process(self.proc)
        self.proc = None
        if not self.out.closed:
            self.out.close()


class ProxyTest(AcmeTestBase):
    @classmethod
    def start_servers(cls):
        super().start_servers()
        cls.proxy = Tinyproxy(cls.tmp, cls.pebble.port)
        cls.servers.append(cls.proxy)

    def test_1_explicit_proxy_carries_the_issuance(self):
        before = self.proxy.connects(self.pebble.port)
        config = self.issuer_config("explicit", proxy=self.proxy.url)
        # NO_PROXY naming pebble's host must not bypass a proxy the issuer table names.
        env = dict(NO_PROXY_ENV, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        done, cert, chain = self.issue("explicit", config, env=env)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        tunnels = self.proxy.connects(self.pebble.port) - before
        self.assertGreaterEqual(tunnels, 1, "no CONNECT to pebble in tinyproxy's log:\n" + self.proxy.log_text()[-3000:])
        # One easy handle per attempt: the dozen ACME requests share one tunnel.
        self.assertEqual(tunnels, 1, "the TLS connection was not reused:\n" + self.proxy.log_text()[-3000:])

    def test_2_environment_proxy_is_honoured(self):
        before = self.proxy.connects(self.pebble.port)
        env = dict(NO_PROXY_ENV, https_proxy=self.proxy.url)
        done, cert, chain = self.issue("environment", self.issuer_config("environment"), env=env)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        self.assertGreater(self.proxy.connects(self.pebble.port), before, "https_proxy was not used")

    def test_3_no_proxy_setting_bypasses_the_proxy(self):
        before = self.proxy.connects(self.pebble.port)
        config = self.issuer_config("bypass", proxy=self.proxy.url, no_proxy="localhost,127.0.0.1")
        done, cert, chain = self.issue("bypass", config, env=NO_PROXY_ENV)
        self.assertIssued(done, cert, chain, self.pebble.root_path)
        self.assertEqual(self.proxy.connects(self.pebble.port), before, "no_proxy did not bypass the proxy")

    def test_9_proxy_down_is_unreachable_naming_the_proxy(self):
        self.proxy.stop()
        config = self.issuer_config("down", proxy=self.proxy.url)
        done, _, _ = self.issue("down", config, env=NO_PROXY_ENV)
        self.assertEqual(done.rc, EXIT["unreachable"], done.describe())
        self.assertTrue(done.stdout.startswith("unreachable: "), done.describe())
        self.assertIn(f"proxy {self.proxy.url}", done.stdout)
        self.assertIn("cannot connect", done.stdout)


if __name__ == "__main__":
    harness.main()
