"""keywardd with a smartcard: the virtual CAC card (card_fixture.py) behind real pcscd and OpenSC's PKCS#11 module.

Adopting the card's key by id, its certificate, every scheme the card offers (verified by OpenSSL against that
certificate), mTLS through the provider, removal (idle and during a signature), reinsertion, another card in the
reader, pcscd killed and restarted, a wrong PIN (exactly one VERIFY reaches the card), a card inserted after the agent
started and a PIN file fixed after a rejection (both usable without a reload), the look at a card running on the
token's executor, a card that stops answering (an error within card_timeout), and the latency of a card signature
through the agent against OpenSC called directly (printed as a figure)."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import card_fixture  # noqa: E402
from card_fixture import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.source_dir(), "tests", "provider"))
import provider_helpers as ph  # noqa: E402

KEY = "cardkey"
RSA_SCHEMES = [s for s, (_, fam) in harness.SCHEMES.items() if fam in ("pkcs1", "pss")]
LOOKED_AT = "token card: looked at the card on the token's executor: "


def listed(agent):
    return [k["name"] for k in agent.cli("keys", "list", json=True).data["keys"]]


def card_config(tmp, card, pin_file, name="keyward.toml", extra=""):
    return tmp.write(name, f"""
[tokens.card]{extra}
kind = "pkcs11"
module = "{card_fixture.OPENSC_MODULE}"
uri = "pkcs11:token={card_fixture.CARD_LABEL}"
pin_file = "{pin_file}"
card = true
reader = "{card_fixture.READER}"

[keys.{KEY}]
token = "card"
object = "pkcs11:id={card_fixture.KEY_URI_ID}"
""")


class CardAgentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir("keyward-card-")
        cls.card = card_fixture.CardFixture(cls.tmp)
        cls.card.start_pcscd()
        cls.card.insert()
        cls.pin_file = cls.tmp.write("card.pin", card_fixture.PIN + "\n", mode=0o600)
        cls.config = card_config(cls.tmp, cls.card, cls.pin_file)
        cls.agent = harness.Agent(cls.tmp, config=cls.config, env=cls.card.env)
        cls.agent.start()
        cls.pub = cls.tmp.join("card.pub")
        harness.openssl("x509", "-in", cls.card.cert_pem, "-pubkey", "-noout", "-out", cls.pub)
        cls.message = cls.tmp.write("message.bin", os.urandom(3000) + b"signed on the card\n")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop(expect_exit=None)
        cls.card.stop()
        cls.tmp.cleanup()

    def setUp(self):
        # Every test starts with pcscd up, the card in, the PIN counter full and the agent using it.
        if self.card.pcscd is None or self.card.pcscd.poll() is not None:
            self.card.start_pcscd()
        if self.card.inserted() and self.card._other_card:
            self.card.remove()
        if not self.card.inserted():
            self.card.insert()
        self.card.reset_pin()
        if not harness.wait_until(lambda: self.sign_ok(), 20, 0.2):
            self.fail("the agent does not sign with the card at the start of the test\n" + self.agent.log_tail())

    # -- helpers --

    def sign(self, scheme="rsa_pkcs1_sha256", check=True, timeout=60):
        sig = self.tmp.join("sig.bin")
        if os.path.exists(sig):
            os.unlink(sig)
        done = self.agent.cli("sign", KEY, "--scheme", scheme, "--in", self.message, "--out", sig, check=check,
                              timeout=timeout)
        return done, sig

    def sign_ok(self):
        return self.sign(check=False)[0].rc == 0

    def sign_with(self, agent, timeout=60):
        return agent.cli("sign", KEY, "--scheme", "rsa_pkcs1_sha256", "--in", self.message, "--out",
                         self.tmp.join("other.sig"), check=False, timeout=timeout)

    def other_agent(self, name, config):
        """An agent of its own on the card; the class's agent stops meanwhile (one agent on the card at a time, like
        one user's session) and comes back in other_agent_done()."""
        agent = harness.Agent(self.tmp, name=name, config=config, env=self.card.env)
        self.agent.stop()
        return agent

    def other_agent_done(self, agent):
        agent.stop(expect_exit=None)
        self.card.unstall()
        self.card.reset_pin()
        if not self.card.inserted():
            self.card.insert()
        self.agent.start()

    def verify(self, scheme, sig):
        digest, family = harness.SCHEMES[scheme]
        args = ["dgst", f"-{digest}", "-verify", self.pub, "-signature", sig]
        if family == "pss":
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        harness.openssl(*args, self.message)

    def token_status(self):
        data = self.agent.cli("status", json=True).data
        for t in data.get("tokens", []):
            if t.get("name") == "card":
                return t
        self.fail(f"no token 'card' in status: {data!r}")

    # -- the key and its certificate --

    def test_adopted_key_shows_the_cards_certificate(self):
        show = self.agent.cli("keys", "show", KEY).stdout
        self.assertIn("rsa-2048", show)
        self.assertIn(f"CN={card_fixture.CARD_LABEL}", show)
        out = self.tmp.join("written.pem")
        self.agent.cli("keys", "cert", KEY, "--out", out)
        fp = lambda path: harness.openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256").stdout
        self.assertEqual(fp(out), fp(self.card.cert_pem), "keys cert writes the certificate stored on the card")
        # The key's public key is the certificate's.
        self.assertEqual(self.agent.pubkey(KEY).strip(), open(self.pub).read().strip())

    def test_every_scheme_the_card_offers_verifies_against_its_certificate(self):
        show = self.agent.cli("keys", "show", KEY, json=True).data
        offered = show["schemes"]
        self.assertIn("rsa_pkcs1_sha256", offered)
        for scheme in offered:
            with self.subTest(scheme=scheme):
                _, sig = self.sign(scheme)
                self.verify(scheme, sig)

    def test_no_key_generation_on_the_card(self):
        done = self.agent.cli("keys", "create", "newkey", "--type", "ec-p256", "--token", "card", check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("smartcard", done.stderr)
        done = self.agent.cli("keys", "delete", KEY, check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("never deletes a key it did not make", done.stderr)

    def test_mtls_through_the_provider_with_the_card_key(self):
        cert, key = self.card.ca.server_cert()
        with harness.SServer(cert, key, self.card.ca_cert, extra_args=["-www"]) as server:
            for proto in ("-tls1_2", "-tls1_3"):
                with self.subTest(protocol=proto):
                    before = self.agent.signatures()
                    result = ph.s_client(server.port, self.card.ca_cert, self.card.cert_pem, f"keyward:{KEY}",
                                         extra=[*ph.provider_args(), proto],
                                         env={"KEYWARD_SOCKET": self.agent.socket, "OPENSSL_CONF": None})
                    ph.assert_handshake_used_agent(self, self.agent, before, result, card_fixture.CARD_LABEL)

    # -- hot-plug --

    def test_removed_card_fails_at_once_and_comes_back(self):
        self.card.remove()
        t0 = time.monotonic()
        done, _ = self.sign(check=False, timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(done.rc, harness.EXIT_DEVICE, done.describe())
        self.assertIn(f"the card in reader {card_fixture.READER} was removed", done.stderr)
        self.assertLess(took, 3, "a removed card answers at once")
        self.assertEqual(self.token_status()["state"], "removed")
        mark = self.card.events_mark()
        log_mark = self.agent.log_size()
        self.card.insert()
        # The monitor's "present" becomes a look at the card on the token's executor (never on the monitor's
        # thread, beside the token's one worker); the look logs in again.
        self.agent.wait_for_log(LOOKED_AT + "present", since=log_mark)
        self.assertEqual(self.token_status()["state"], "present")
        self.assertIn("verify ok", self.card.events(mark), "the agent logged in again on the card put back")
        self.assertTrue(harness.wait_until(self.sign_ok, 20, 0.2), self.agent.log_tail())
        _, sig = self.sign()
        self.verify("rsa_pkcs1_sha256", sig)

    def test_removal_during_a_signature(self):
        self.card.remove()
        self.card.insert(sign_delay_ms=1500)
        harness.wait_until(self.sign_ok, 20, 0.2)
        result = {}

        def slow_sign():
            t0 = time.monotonic()
            result["done"] = self.sign(check=False, timeout=60)[0]
            result["took"] = time.monotonic() - t0
        th = threading.Thread(target=slow_sign)
        th.start()
        time.sleep(0.7)
        self.card.remove()
        th.join(60)
        self.assertFalse(th.is_alive())
        self.assertNotEqual(result["done"].rc, 0, "a signature whose card went away cannot succeed")
        self.assertIn("removed", result["done"].stderr)
        self.assertLess(result["took"], 10)
        self.card.insert()
        self.assertTrue(harness.wait_until(self.sign_ok, 20, 0.2), self.agent.log_tail())

    def test_a_different_card_is_refused_and_status_says_so(self):
        self.card.remove()
        self.card.insert(other_card=True)
        done, _ = self.sign(check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertIn("is not the card this token was opened with", done.stderr)
        status = self.token_status()
        self.assertEqual(status["state"], "error")
        self.assertIn("not the card this token was opened with", str(status))
        self.card.remove()
        self.card.insert()
        self.assertTrue(harness.wait_until(self.sign_ok, 20, 0.2), self.agent.log_tail())

    def test_pcscd_killed_and_restarted(self):
        self.card.stop_pcscd(kill=True)
        done, _ = self.sign(check=False, timeout=30)
        self.assertNotEqual(done.rc, 0)
        self.card.start_pcscd()
        self.card.insert()
        self.assertTrue(harness.wait_until(self.sign_ok, 30, 0.3), "no signature after pcscd came back\n" +
                        self.agent.log_tail())
        _, sig = self.sign()
        self.verify("rsa_pkcs1_sha256", sig)

    # -- PINs --

    def test_wrong_pin_is_tried_once_and_never_again_until_the_file_changes(self):
        wrong_pin = self.tmp.write("wrong.pin", "000000\n", mode=0o600)
        config = self.tmp.write("wrong.toml", open(self.config).read().replace(self.pin_file, wrong_pin))
        mark = self.card.events_mark()
        agent = harness.Agent(self.tmp, name="wrongpin", config=config, env=self.card.env)
        self.agent.stop()  # one agent on the card at a time, like one user's session
        try:
            agent.start()
            for _ in range(3):
                done = agent.cli("sign", KEY, "--scheme", "rsa_pkcs1_sha256", "--in", self.message, "--out",
                                 self.tmp.join("never.sig"), check=False)
                self.assertNotEqual(done.rc, 0)
            states = {t["name"]: t["state"] for t in agent.cli("status", json=True).data["tokens"]}
            self.assertEqual(states.get("card"), "needs-pin")
            self.assertEqual(self.card.verify_count(mark), 1, self.card.events(mark))
            self.assertEqual(self.card.pin_tries_left(), card_fixture.PIN_TRIES - 1)
            self.assertIn("was rejected (CKR_PIN_INCORRECT); it is not tried again until that file changes",
                          agent.log_text())
            self.assertNotIn("000000", agent.log_text())
            # The keys could not be read without a login: not listed, asking for them sends nothing to the card.
            for _ in range(3):
                self.assertNotIn(KEY, listed(agent))
                time.sleep(0.4)
            self.assertEqual(self.card.verify_count(mark), 1, self.card.events(mark))
            # The right PIN written to the file, and no reload: the next request that asks for the key makes the
            # agent look again (the file changed), one more VERIFY, the right one, and the key is listed and signs.
            with open(wrong_pin, "w") as f:
                f.write(card_fixture.PIN + "\n")
            self.assertTrue(harness.wait_until(lambda: KEY in listed(agent), 15, 0.3), agent.log_tail())
            agent.cli("sign", KEY, "--scheme", "rsa_pkcs1_sha256", "--in", self.message, "--out",
                      self.tmp.join("now.sig"))
            self.assertEqual(self.card.verify_count(mark), 2, self.card.events(mark))
            self.assertEqual([e for e in self.card.events(mark) if e.startswith("verify ")][-1], "verify ok")
            self.assertNotIn("reload", agent.log_text().lower())
        finally:
            agent.stop(expect_exit=None)
            self.agent.start()

    def test_locked_pin_shows_as_locked(self):
        with open(self.card.pin_state, "w") as f:
            f.write("0\n")
        self.card.remove()
        self.card.insert()
        mark = self.card.events_mark()
        done, _ = self.sign(check=False)
        self.assertNotEqual(done.rc, 0)
        self.assertEqual(self.token_status()["state"], "locked", self.agent.log_tail())
        self.assertEqual(self.card.verify_count(mark), 0, "a locked PIN is not offered to the card")
        self.card.reset_pin()
        self.card.remove()

    def test_pin_tries_running_low_show_in_status(self):
        """After a wrong PIN took the card to its last try, status says so next to needs-pin."""
        with open(self.card.pin_state, "w") as f:
            f.write("2\n")  # one wrong PIN was entered elsewhere already
        wrong_pin = self.tmp.write("wrong2.pin", "000000\n", mode=0o600)
        config = self.tmp.write("wrong2.toml", open(self.config).read().replace(self.pin_file, wrong_pin))
        mark = self.card.events_mark()
        agent = harness.Agent(self.tmp, name="lasttry", config=config, env=self.card.env)
        self.agent.stop()
        try:
            agent.start()
            self.assertEqual(self.card.pin_tries_left(), 1)
            agent.cli("sign", KEY, "--scheme", "rsa_pkcs1_sha256", "--in", self.message, "--out",
                      self.tmp.join("never.sig"), check=False)
            card = [t for t in agent.cli("status", json=True).data["tokens"] if t["name"] == "card"][0]
            self.assertEqual(card["state"], "needs-pin", card)
            self.assertIn("CKF_USER_PIN_FINAL_TRY", card["description"])
            self.assertIn("CKF_USER_PIN_FINAL_TRY", agent.log_text())
            self.assertEqual(self.card.verify_count(mark), 1, "the last try is left for a person")
        finally:
            agent.stop(expect_exit=None)
            self.card.reset_pin()
            self.agent.start()

    def test_card_inserted_after_start_is_listed_and_signs_without_reload(self):
        self.card.remove()
        agent = self.other_agent("late", self.config)
        try:
            agent.start()
            self.assertNotIn(KEY, listed(agent))
            done = self.sign_with(agent)
            self.assertNotEqual(done.rc, 0)
            mark = self.card.events_mark()
            log_mark = agent.log_size()
            self.card.insert()  # returns once PC/SC shows the card
            t0 = time.monotonic()
            agent.wait_for_log(LOOKED_AT + "present", since=log_mark)
            agent.wait_for_log("token card: key cardkey found on the card; usable now", since=log_mark)
            self.assertIn(KEY, listed(agent))
            print(f"\nFIGURE card inserted after start: key listed {time.monotonic() - t0:.2f} s after PC/SC showed "
                  f"the card (no reload)", flush=True)
            done = self.sign_with(agent)
            self.assertEqual(done.rc, 0, done.describe())
            self.assertEqual(self.card.verify_count(mark), 1, "one login on the card inserted")
            show = agent.cli("keys", "show", KEY).stdout
            self.assertIn(f"CN={card_fixture.CARD_LABEL}", show)
            self.assertNotIn("reload", agent.log_text().lower())
            # Taken out again: the key stays listed and answers the removal at once.
            self.card.remove()
            done = self.sign_with(agent, timeout=30)
            self.assertEqual(done.rc, harness.EXIT_DEVICE, done.describe())
            self.assertIn(f"the card in reader {card_fixture.READER} was removed", done.stderr)
            self.assertIn(KEY, listed(agent))
        finally:
            self.other_agent_done(agent)

    def test_a_different_card_inserted_after_start_is_not_adopted(self):
        agent = self.other_agent("swapped", self.config)
        self.card.remove()
        self.card.insert(other_card=True)  # the first card the token sees is this one...
        try:
            agent.start()
            self.assertIn(KEY, listed(agent))
            log_mark = agent.log_size()
            self.card.remove()
            self.card.insert()  # ...so the usual card is another one for it
            agent.wait_for_log(LOOKED_AT + "error", since=log_mark)
            done = self.sign_with(agent)
            self.assertNotEqual(done.rc, 0)
            self.assertIn("is not the card this token was opened with", done.stderr)
        finally:
            self.other_agent_done(agent)

    # -- a card that stops answering --

    def test_a_card_that_stops_answering_fails_within_card_timeout(self):
        config = card_config(self.tmp, self.card, self.pin_file, name="stall.toml", extra="\ncard_timeout = 2")
        agent = self.other_agent("stall", config)
        try:
            agent.start()
            self.assertEqual(self.sign_with(agent).rc, 0)
            self.card.stall()
            mark = self.card.events_mark()
            t0 = time.monotonic()
            done = self.sign_with(agent, timeout=30)
            took = time.monotonic() - t0
            self.assertEqual(done.rc, harness.EXIT_DEVICE, done.describe())
            self.assertIn(f"the card in reader {card_fixture.READER} did not answer within 2 s", done.stderr)
            self.assertGreater(took, 1.5)
            self.assertLess(took, 5, "the answer comes at the deadline, not when the card answers")
            self.assertIn("stalled", self.card.events(mark), "the signature reached the card, which kept it")
            status = [t for t in agent.cli("status", json=True).data["tokens"] if t["name"] == "card"][0]
            self.assertEqual(status["state"], "error", status)
            self.assertIn("did not answer within 2 s", status["description"])
            # The worker is free, the card is not: new work fails at once instead of queueing behind it.
            t0 = time.monotonic()
            done = self.sign_with(agent, timeout=30)
            again = time.monotonic() - t0
            self.assertNotEqual(done.rc, 0)
            self.assertIn("did not answer within 2 s", done.stderr)
            self.assertLess(again, 1.5)
            print(f"\nFIGURE stalled card, card_timeout 2 s: the signature answered after {took:.2f} s, the next "
                  f"one after {again:.2f} s (keyward CLI round trips)", flush=True)
            # The card answers again: the token comes back by itself.
            log_mark = agent.log_size()
            self.card.unstall()
            agent.wait_for_log("answers again", since=log_mark)
            self.assertTrue(harness.wait_until(lambda: self.sign_with(agent).rc == 0, 20, 0.3), agent.log_tail())
            status = [t for t in agent.cli("status", json=True).data["tokens"] if t["name"] == "card"][0]
            self.assertEqual(status["state"], "present", status)
        finally:
            self.other_agent_done(agent)

    # -- how fast --

    def test_latency_agent_vs_opensc(self):
        """One card signature through the agent (libkeyward-client) against OpenSC's C_Sign in one process."""
        runs = 50
        tool = harness.require_program(os.path.join(harness.bin_dir(), "tests", "pcsc", "card_latency"))
        done = harness.run([tool, self.agent.socket, KEY, card_fixture.OPENSC_MODULE, self.pin_file,
                            card_fixture.KEY_ID_HEX, str(runs)], env=self.card.env, context=self.agent.log_tail)
        fields = done.stdout.split()
        self.assertEqual(fields[0::3], ["agent_ms", "direct_ms"][:len(fields[0::3])], done.stdout)
        agent_median, agent_mean, direct_median, direct_mean = map(float, (fields[1], fields[2], fields[4], fields[5]))
        print(f"\nFIGURE card signature latency, RSA-2048 PKCS#1 v1.5 on the virtual CAC card, {runs} runs: "
              f"through keywardd median {agent_median:.2f} ms (mean {agent_mean:.2f}), "
              f"OpenSC C_Sign directly median {direct_median:.2f} ms (mean {direct_mean:.2f}); "
              f"overhead {agent_median - direct_median:+.2f} ms", flush=True)
        # The agent adds a socket round trip and a thread hand-off, not another card operation.
        self.assertLess(agent_median, direct_median * 1.5 + 5)

if __name__ == "__main__":
    harness.main()
