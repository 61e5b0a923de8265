"""Keys made by keywardd are non-exportable on the device: OpenSC's pkcs11-tool, an
independent PKCS#11 reader, reads the attributes back from the agent's SoftHSM2 token."""

import re

import harness
from harness import AgentTestCase, openssl

KEYS = {"attr-p256": "ec-p256", "attr-p384": "ec-p384", "attr-rsa": "rsa-2048"}


def parse_objects(listing):
    """pkcs11-tool -O output -> list of dicts: kind ("Private Key Object; EC", ...), label,
    id, access (set of words from the Access: line), usage."""
    objects = []
    current = None
    for line in listing.splitlines():
        if re.match(r"^\S.* Object", line):
            current = {"kind": line.strip(), "access": set(), "usage": set(), "label": None, "id": None}
            objects.append(current)
            continue
        if current is None:
            continue
        m = re.match(r"^\s+(label|ID|Access|Usage):\s*(.*)$", line)
        if not m:
            continue
        field, value = m.group(1), m.group(2).strip()
        if field in ("Access", "Usage"):
            current[field.lower()] = {w.strip() for w in value.split(",") if w.strip()}
        else:
            current[field.lower()] = value
    return objects


class TestAttributes(AgentTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, key_type in KEYS.items():
            cls.agent.create_key(name, key_type)

    def objects(self, login=True):
        return parse_objects(self.agent.pkcs11_tool("-O", login=login).stdout)

    def private_key(self, name, objects):
        found = [o for o in objects if o["kind"].startswith("Private Key Object") and o["label"] == name]
        self.assertEqual(len(found), 1, f"expected one private key labelled {name} on the token, got: {objects}")
        return found[0]

    def test_private_keys_are_sensitive_and_never_extractable(self):
        objects = self.objects()
        for name in KEYS:
            with self.subTest(key=name):
                key = self.private_key(name, objects)
                access = key["access"]
                self.assertIn("sensitive", access, key)          # CKA_SENSITIVE true
                self.assertIn("always sensitive", access, key)   # CKA_ALWAYS_SENSITIVE true
                self.assertNotIn("extractable", access, key)     # CKA_EXTRACTABLE false
                self.assertIn("never extractable", access, key)  # CKA_NEVER_EXTRACTABLE true
                self.assertIn("local", access, key)              # CKA_LOCAL: generated on the token
                self.assertTrue(key["id"], f"{name} has no CKA_ID: {key}")
                self.assertIn("sign", key["usage"], key)

    def test_private_keys_are_private_objects(self):
        # CKA_PRIVATE true: without a login the token does not even show them.
        anonymous = self.objects(login=False)
        for name in KEYS:
            with self.subTest(key=name):
                hidden = [o for o in anonymous if o["kind"].startswith("Private Key Object") and o["label"] == name]
                self.assertEqual(hidden, [], f"{name} is visible without logging in: {hidden}")

    def test_public_key_on_the_token_matches_keyward_pubkey(self):
        for name in KEYS:
            with self.subTest(key=name):
                token_der = self.tmp.join(f"{name}.token.der")
                self.agent.pkcs11_tool("--read-object", "--type", "pubkey", "--label", name, "-o", token_der)
                ours = self.tmp.join(f"{name}.pem")
                self.agent.pubkey(name, ours)
                ours_der = openssl("pkey", "-pubin", "-in", ours, "-outform", "DER").stdout_bytes
                theirs_der = openssl("pkey", "-pubin", "-inform", "DER", "-in", token_der,
                                     "-outform", "DER").stdout_bytes
                self.assertEqual(ours_der, theirs_der, f"keyward's public key of {name} is not the token's")

    def test_keys_show_reports_the_attributes_read_back(self):
        for name in KEYS:
            with self.subTest(key=name):
                data = self.agent.cli("keys", "show", name, json=True).data
                attributes = data.get("attributes")
                self.assertTrue(attributes, f"keys show --json has no attributes: {data}")
                if isinstance(attributes, list):
                    attributes = {a["name"]: a["value"] for a in attributes}
                flat = {k.lower().replace("cka_", ""): str(v).lower() for k, v in attributes.items()}
                self.assertIn(flat.get("extractable"), ("false", "no", "0"), attributes)
                self.assertIn(flat.get("sensitive"), ("true", "yes", "1"), attributes)

    def test_deleted_key_is_gone_from_the_token(self):
        self.agent.create_key("attr-doomed", "ec-p256")
        self.private_key("attr-doomed", self.objects())
        self.agent.cli("keys", "delete", "attr-doomed")
        left = [o for o in self.objects() if o["label"] == "attr-doomed"]
        self.assertEqual(left, [], f"objects of a deleted key remain on the token: {left}")


if __name__ == "__main__":
    harness.main()
