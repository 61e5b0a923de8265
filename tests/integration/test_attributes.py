"""Keys made by keywardd are non-exportable on the device: OpenSC's pkcs11-tool, an
independent PKCS#11 reader, reads the attributes back from the agent's SoftHSM2 token."""

import re

import harness
from harness import AgentTestCase, openssl

KEYS = {"attr-p256": "ec-p256", "attr-p384": "ec-p384", "attr-rsa": "rsa-2048"}
EC_PARAMS = {"ec-p256": "06082a8648ce3d030107", "ec-p384": "06052b81040022"}  # DER OIDs of the named curves


def parse_objects(listing):
    """pkcs11-tool -O output -> list of dicts: kind ("Private Key Object; EC", ...), label,
    id, access and usage (sets of words), ec_point and ec_params (hex, EC public keys)."""
    objects = []
    current = None
    for line in listing.splitlines():
        if re.match(r"^\S.* Object", line):
            current = {"kind": line.strip(), "access": set(), "usage": set(), "label": None, "id": None,
                       "ec_point": None, "ec_params": None}
            objects.append(current)
            continue
        if current is None:
            continue
        m = re.match(r"^\s+(label|ID|Access|Usage|EC_POINT|EC_PARAMS):\s*(.*)$", line)
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
        objects = self.objects()
        for name, key_type in KEYS.items():
            with self.subTest(key=name):
                ours = self.tmp.join(f"{name}.pem")
                self.agent.pubkey(name, ours)
                ours_der = openssl("pkey", "-pubin", "-in", ours, "-outform", "DER").stdout_bytes
                if key_type.startswith("ec-"):
                    # pkcs11-tool 0.23 cannot export P-384 public keys; compare CKA_EC_POINT
                    # (a DER OCTET STRING around the uncompressed point) and CKA_EC_PARAMS.
                    public = [o for o in objects if o["kind"].startswith("Public Key Object") and o["label"] == name]
                    self.assertEqual(len(public), 1, objects)
                    point = bytes.fromhex(public[0]["ec_point"])
                    self.assertEqual(point[0], 0x04, "CKA_EC_POINT is not a DER OCTET STRING")
                    self.assertEqual(point[1], len(point) - 2)
                    self.assertTrue(ours_der.endswith(point[2:]), f"keyward's public key of {name} is not the token's")
                    self.assertEqual(public[0]["ec_params"], EC_PARAMS[key_type])
                    continue
                token_der = self.tmp.join(f"{name}.token.der")
                self.agent.pkcs11_tool("--read-object", "--type", "pubkey", "--label", name, "-o", token_der)
                theirs_der = openssl("pkey", "-pubin", "-inform", "DER", "-in", token_der,
                                     "-outform", "DER").stdout_bytes
                self.assertEqual(ours_der, theirs_der, f"keyward's public key of {name} is not the token's")

    def test_keys_show_reports_the_attributes_read_back(self):
        expected = {"CKA_TOKEN": "true", "CKA_PRIVATE": "true", "CKA_SENSITIVE": "true", "CKA_EXTRACTABLE": "false",
                    "CKA_ALWAYS_SENSITIVE": "true", "CKA_NEVER_EXTRACTABLE": "true", "CKA_SIGN": "true"}
        objects = self.objects()
        for name in KEYS:
            with self.subTest(key=name):
                data = self.agent.cli("keys", "show", name, json=True).data
                attributes = {a["name"]: a["value"] for a in data.get("attributes", [])}
                for attribute, value in expected.items():
                    self.assertEqual(attributes.get(attribute), value, f"{attribute} of {name}: {attributes}")
                # The CKA_ID the agent reports is the one on the token.
                self.assertEqual(attributes.get("CKA_ID", "").lower(),
                                 self.private_key(name, objects)["id"].lower(), attributes)

    def test_deleted_key_is_gone_from_the_token(self):
        self.agent.create_key("attr-doomed", "ec-p256")
        self.private_key("attr-doomed", self.objects())
        self.agent.cli("keys", "delete", "attr-doomed")
        left = [o for o in self.objects() if o["label"] == "attr-doomed"]
        self.assertEqual(left, [], f"objects of a deleted key remain on the token: {left}")


if __name__ == "__main__":
    harness.main()
