"""Key management through the CLI against a real keywardd on SoftHSM2: every key type is
generated on the token, listed, shown, exported as a public key, and deleted."""

import base64
import os
import hashlib
import re

import harness
from harness import EXIT_NO_SUCH_KEY, EXIT_USAGE, AgentTestCase, openssl

EXPECTED_PUBLIC_KEY = {
    "ec-p256": (256, "P-256"),
    "ec-p384": (384, "P-384"),
    "rsa-2048": (2048, None),
    "rsa-3072": (3072, None),
    "rsa-4096": (4096, None),
}


def listed_names(data):
    """Key names in `keyward keys list --json` output (a list of keys or {"keys": [...]})."""
    keys = data.get("keys") if isinstance(data, dict) else data
    assert isinstance(keys, list), f"keys list --json: expected a list of keys, got {data!r}"
    return [k["name"] for k in keys]


class TestKeys(AgentTestCase):
    def pubkey_text(self, name):
        pem_path = self.tmp.join(f"{name}.pub.pem")
        self.agent.pubkey(name, pem_path)
        return openssl("pkey", "-pubin", "-in", pem_path, "-noout", "-text").stdout

    def assert_public_key(self, name, key_type):
        bits, curve = EXPECTED_PUBLIC_KEY[key_type]
        text = self.pubkey_text(name)
        der = openssl("pkey", "-pubin", "-in", self.tmp.join(f"{name}.pub.pem"), "-outform", "DER").stdout_bytes
        shown = self.agent.cli("keys", "show", name, json=True).data
        self.assertEqual(shown.get("spki_sha256"), hashlib.sha256(der).hexdigest(),
                         "keys show and keys pubkey disagree about the public key")
        self.assertIn(f"Public-Key: ({bits} bit)", text, text)
        if curve:
            self.assertIn(f"NIST CURVE: {curve}", text, text)
        else:
            self.assertRegex(text, r"Modulus:", text)
            self.assertIn("Exponent: 65537", text)

    def assert_show(self, name, key_type):
        data = self.agent.cli("keys", "show", name, json=True).data
        self.assertIsInstance(data, dict, f"keys show --json: {data!r}")
        self.assertEqual(data.get("name"), name, data)
        self.assertEqual(data.get("type"), key_type, data)
        bits = EXPECTED_PUBLIC_KEY[key_type][0]
        self.assertEqual(int(data.get("bits", 0)), bits, data)
        self.assertEqual(sorted(data.get("schemes", [])), sorted(harness.schemes_for(key_type)), data)
        human = self.agent.cli("keys", "show", name).stdout
        self.assertIn(name, human)
        self.assertIn(key_type, human)

    def lifecycle(self, key_type):
        name = "key-" + key_type
        self.agent.create_key(name, key_type)
        self.assertIn(name, listed_names(self.agent.cli("keys", "list", json=True).data))
        self.assertIn(name, self.agent.cli("keys", "list").stdout)
        self.assert_show(name, key_type)
        self.assert_public_key(name, key_type)

        self.agent.cli("keys", "delete", name)
        gone = self.agent.cli("keys", "show", name, check=False)
        self.assertEqual(gone.rc, EXIT_NO_SUCH_KEY, gone.describe())
        self.assertNotIn(name, listed_names(self.agent.cli("keys", "list", json=True).data))

    def test_ec_p256(self):
        self.lifecycle("ec-p256")

    def test_ec_p384(self):
        self.lifecycle("ec-p384")

    def test_rsa_2048(self):
        self.lifecycle("rsa-2048")

    def test_rsa_3072(self):
        self.lifecycle("rsa-3072")

    def test_rsa_4096(self):
        self.lifecycle("rsa-4096")

    def test_all_types_coexist_in_the_listing(self):
        names = {}
        for key_type in ("ec-p256", "ec-p384", "rsa-2048"):
            names[key_type] = "both-" + key_type
            self.agent.create_key(names[key_type], key_type)
        data = self.agent.cli("keys", "list", json=True).data
        listed = listed_names(data)
        for key_type, name in names.items():
            self.assertIn(name, listed)
        for name in names.values():
            self.agent.cli("keys", "delete", name)

    def test_key_reference_names_the_key_and_carries_its_public_key(self):
        self.agent.create_key("ref-key", "ec-p256")
        path = self.agent.key_ref("ref-key", self.tmp.join("ref-key.pem"))
        text = open(path).read()
        self.assertIn("-----BEGIN KEYWARD KEY-----", text)
        self.assertNotIn("PRIVATE", text)
        body = base64.b64decode("".join(l for l in text.splitlines() if l and not l.startswith("-----")))
        spki = openssl("pkey", "-pubin", "-outform", "DER", input=self.agent.pubkey("ref-key")).stdout_bytes
        self.assertIn(b"ref-key", body)
        self.assertIn(spki, body)
        self.assertEqual(self.agent.cli("keys", "ref", "ref-key").stdout, text, "--out and stdout differ")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, "a key reference must not be readable by others")
        os.chmod(path, 0o644)  # an existing file is rewritten with the right mode too
        self.agent.key_ref("ref-key", path)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        null_mode = os.stat(os.devnull).st_mode
        self.agent.key_ref("ref-key", os.devnull)  # not a regular file: its mode is not ours to change
        self.assertEqual(os.stat(os.devnull).st_mode, null_mode)
        self.agent.cli("keys", "delete", "ref-key")

    def test_duplicate_create_fails_and_keeps_the_original(self):
        self.agent.create_key("dup", "ec-p256")
        before = self.agent.pubkey("dup")
        again = self.agent.cli("keys", "create", "dup", "--type", "ec-p256", check=False)
        self.assertEqual(again.rc, 1, again.describe())
        self.assertIn("exists", again.stderr.lower(), again.describe())
        self.assertEqual(self.agent.pubkey("dup"), before, "a failed duplicate create changed the key")
        self.agent.cli("keys", "delete", "dup")

    def test_unknown_key_exits_5(self):
        for args in (("keys", "show", "no-such-key"), ("keys", "pubkey", "no-such-key"),
                     ("keys", "delete", "no-such-key"),
                     ("sign", "no-such-key", "--scheme", "ecdsa_secp256r1_sha256", "--digest", "00" * 32)):
            with self.subTest(args=args):
                done = self.agent.cli(*args, check=False)
                self.assertEqual(done.rc, EXIT_NO_SUCH_KEY, done.describe())
                self.assertIn("no-such-key", done.stderr, done.describe())

    def test_read_commands_emit_json(self):
        self.agent.create_key("json-key", "ec-p256")
        status = self.agent.cli("status", json=True).data
        self.assertIsInstance(status, dict, status)
        self.assertIn("signatures", status)
        self.assertIsInstance(self.agent.cli("keys", "list", json=True).data, (list, dict))
        self.assertIsInstance(self.agent.cli("keys", "show", "json-key", json=True).data, dict)
        self.agent.cli("keys", "delete", "json-key")

    def test_usage_errors_exit_2(self):
        for args in (("frobnicate",), ("keys", "create"), ("sign", "k")):
            with self.subTest(args=args):
                done = self.agent.cli(*args, check=False)
                self.assertEqual(done.rc, EXIT_USAGE, done.describe())
                self.assertTrue(done.stderr.strip(), "a usage error must say what is wrong")

    def test_invalid_key_names_and_types_are_refused(self):
        bad_type = self.agent.cli("keys", "create", "typo", "--type", "ec-p999", check=False)
        self.assertIn(bad_type.rc, (1, EXIT_USAGE), bad_type.describe())
        self.assertIn("ec-p999", bad_type.stderr, bad_type.describe())
        bad_name = self.agent.cli("keys", "create", "../evil", "--type", "ec-p256", check=False)
        self.assertIn(bad_name.rc, (1, EXIT_USAGE), bad_name.describe())
        names = listed_names(self.agent.cli("keys", "list", json=True).data)
        self.assertFalse([n for n in names if re.search(r"typo|evil", n)], names)


if __name__ == "__main__":
    harness.main()
