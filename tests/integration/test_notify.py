#!/usr/bin/env python3
"""Notifications (docs/renewal.md): a real keywardd whose identity gets a 45-second
certificate from a CA helper that then becomes unreachable. The identity's `notify`
program must run once when it enters `renewal failing`, once per `notify_before` threshold
and once when it is `expired` — and not again after an agent restart."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Agent, TempDir, TestCA, wait_until  # noqa: E402

HELPER = os.path.join(harness.source_dir(), "tests", "integration", "short_ca_helper.sh")


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("keyward-notify-")
        ca = TestCA(self.tmp.join("ca"))
        self.hdir = self.tmp.mkdir("helper")
        self.events = self.tmp.join("events.log")
        notify = self.tmp.write("notify.sh", "#!/bin/sh\n"
                                f'echo "$KEYWARD_IDENTITY|$KEYWARD_EVENT|$KEYWARD_THRESHOLD|$KEYWARD_TIME_LEFT|'
                                f'$KEYWARD_STATUS" >> "{self.events}"\n', mode=0o755)
        self.tmp.write("keyward.toml", f"""
[identities.web]
subject = "/CN=web.example"
sans = ["dns:web.example"]
trust_anchors = "{ca.cert}"
renew_at = "90%"
jitter = "0s"
retry_min = "2s"
retry_max = "5s"
notify = ["{notify}"]
notify_before = ["35s", "25s"]
[identities.web.issuer]
kind = "helper"
command = ["{HELPER}"]
environment = {{ HELPER_DIR = "{self.hdir}", CA_CERT = "{ca.cert}", CA_KEY = "{ca.key}", LIFETIME = "45" }}
""")
        self.agent = Agent(self.tmp, config=self.tmp.join("keyward.toml"))

    def tearDown(self):
        self.agent.kill()
        self.agent.forget()
        self.tmp.cleanup()

    def lines(self):
        try:
            with open(self.events) as f:
                return [line.split("|") for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    # The certificate runs from 60 s before issuance to 45 s after (a 105 s lifetime): the
    # thresholds pass at +10 s and +20 s, the first renewal (90%) at about +34 s, which
    # fails (the CA is unreachable by then: plenty of slack on a slow machine), expiry at +45 s.
    def test_once_per_status_and_threshold_across_restart(self):
        self.agent.start()

        def status():
            return self.agent.cli("identities", "show", "web", json=True).data["status"]
        self.assertTrue(wait_until(lambda: status() == "valid", 60, 0.3), self.agent.log_tail())
        with open(os.path.join(self.hdir, "mode"), "w") as f:
            f.write("unreachable\n")
        self.assertTrue(wait_until(lambda: status() == "expired", 90, 0.5), self.agent.log_tail())
        self.assertTrue(wait_until(lambda: any(e[1] == "expired" for e in self.lines()), 20, 0.3),
                        f"no expired notification: {self.lines()}\n{self.agent.log_tail()}")
        events = self.lines()
        summary = sorted((e[1], e[2]) for e in events)
        self.assertEqual(summary, [("expired", ""), ("expiring", "25"), ("expiring", "35"), ("renewal failing", "")],
                         f"{events}\n{self.agent.log_tail()}")
        for e in events:
            self.assertEqual(e[0], "web")
            if e[1] == "expiring":
                self.assertLessEqual(int(e[3]), int(e[2]))
        self.assertEqual([e[4] for e in events if e[1] == "expired"], ["expired"])

        # A restart re-reads notify.json: nothing is announced again.
        self.agent.restart()
        time.sleep(12)  # past the first renewal check and more (checks run at least every 10 s)
        self.assertEqual(self.lines(), events, self.agent.log_tail())
        self.assertEqual(status(), "expired")


if __name__ == "__main__":
    harness.main()
