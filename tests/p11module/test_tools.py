#!/usr/bin/env python3
"""keyward-pkcs11.so seen through PKCS#11 tools: OpenSC's pkcs11-tool lists the slot, token,
mechanisms and objects and signs with every mechanism (each signature verified with the
openssl tool against the key's public key from the agent); GnuTLS's p11tool lists the
objects; p11-kit loads it from a module file (`p11-kit list-modules`); refusals come back as
the PKCS#11 errors the issue names."""

import hashlib
import os
import re
import unittest

from p11env import P11Env
from harness import openssl, require_program, run
import harness


class ToolsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = P11Env("tools")
        cls.data = cls.env.tmp.write("data.bin", os.urandom(1000))

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def tool(self, *args, check=True):
        argv = [require_program("pkcs11-tool"), "--module", self.env.module, *args]
        return run(argv, env=self.env.client_env(), check=check, context=self.env.agent.log_tail)

    def key_id(self, key):
        """CKA_ID of an agent key: the first 20 bytes of SHA-256 over its SPKI (DER)."""
        der = openssl("pkey", "-pubin", "-in", self.env.pubkey(key), "-outform", "DER").stdout_bytes
        return hashlib.sha256(der).hexdigest()[:40]

    def sign(self, key, mechanism, input_path, *extra, check=True, fmt=True):
        out = self.env.tmp.join(f"sig-{key}-{mechanism}")
        # pkcs11-tool picks the signing key by --id (it ignores --label there).
        args = ["--sign", "--id", self.key_id(key), "-m", mechanism, "--input-file", input_path, "--output-file", out, *extra]
        if fmt:
            args += ["--signature-format", "openssl"]
        done = self.tool(*args, check=check)
        return out, done

    def digest_file(self, name, algorithm):
        h = hashlib.new(algorithm)
        with open(self.data, "rb") as f:
            h.update(f.read())
        return self.env.tmp.write(f"digest-{name}", h.digest())

    # -- what the token says it is --

    def test_slot_and_token_describe_the_agent(self):
        out = self.tool("-L").stdout
        self.assertRegex(out, r"token label\s*:\s*keyward\b", out)
        self.assertRegex(out, r"token manufacturer\s*:\s*keyward\b", out)
        self.assertRegex(out, r"token model\s*:\s*agent\b", out)
        serial = re.search(r"serial num\s*:\s*(\S+)", out)
        self.assertTrue(serial, out)
        self.assertEqual(serial.group(1), re.search(r"serial num\s*:\s*(\S+)", self.tool("-L").stdout).group(1),
                         "the serial number is stable")
        self.assertNotIn("login required", out)

    def test_mechanisms_are_listed(self):
        out = self.tool("-M").stdout
        for m in ["ECDSA", "ECDSA-SHA256", "ECDSA-SHA384", "ECDSA-SHA512", "RSA-PKCS", "SHA256-RSA-PKCS",
                  "SHA384-RSA-PKCS", "SHA512-RSA-PKCS", "RSA-PKCS-PSS", "SHA256-RSA-PKCS-PSS", "SHA384-RSA-PKCS-PSS",
                  "SHA512-RSA-PKCS-PSS"]:
            self.assertRegex(out, rf"(?m)^\s*{re.escape(m)}[ ,]", out)
        self.assertEqual(len(re.findall(r"(?m)^\s+\S.*sign", out)), 12, out)

    def test_objects_keys_and_certificates(self):
        out = self.tool("-O").stdout
        for name, key_type in self.env.keys.items():
            block = re.search(rf"Private Key Object; (EC|RSA).*?\n((?:\s+.*\n)*?)\s+label:\s+{re.escape(name)}\n"
                              r"((?:\s+.*\n)*)", out)
            self.assertTrue(block, f"no private key {name}:\n{out}")
            self.assertEqual(block.group(1), "EC" if key_type.startswith("ec") else "RSA")
        self.assertEqual(out.count("Private Key Object"), 3, out)
        self.assertEqual(out.count("Public Key Object"), 3, out)
        # Two leaves and the intermediate they share (one object, not two).
        self.assertEqual(out.count("Certificate Object"), 3, out)
        self.assertIn("keyward test intermediate", out)
        # pkcs11-tool prints the usage of each key: sign only, never decrypt or unwrap.
        for usage in re.findall(r"Usage:\s+(.*)", out.split("Public Key Object")[0]):
            self.assertNotIn("decrypt", usage)

    def test_private_key_attributes_and_ids(self):
        # The certificate and the private key of an identity share CKA_ID, which is the first
        # 20 bytes of SHA-256 of the key's SubjectPublicKeyInfo.
        key_id = self.key_id("p11-ec")
        out = self.tool("-O", "--id", key_id).stdout
        self.assertIn("Private Key Object", out)
        self.assertIn("Certificate Object", out)
        self.assertIn("Public Key Object", out)
        self.assertRegex(out, r"Access:\s+sensitive, always sensitive, never extractable", out)
        cert_der = self.tool("--read-object", "--type", "cert", "--id", key_id).stdout_bytes
        with open(self.env.cert_path("p11-ec")) as f:
            pem = f.read()
        expected = openssl("x509", "-outform", "DER", input=pem).stdout_bytes
        self.assertEqual(cert_der, expected, "the certificate object is the identity's certificate")

    # -- signing with every mechanism --

    def verify_dgst(self, key, algorithm, sig, *sigopts):
        args = ["dgst", f"-{algorithm}", "-verify", self.env.pubkey(key), "-signature", sig]
        for o in sigopts:
            args += ["-sigopt", o]
        done = openssl(*args, self.data)
        self.assertIn("Verified OK", done.stdout)

    def test_ecdsa_hashing_mechanisms(self):
        for key in ("p11-ec", "p11-p384"):
            for algorithm in ("sha256", "sha384", "sha512"):
                with self.subTest(key=key, algorithm=algorithm):
                    sig, _ = self.sign(key, f"ECDSA-{algorithm.upper()}", self.data)
                    self.verify_dgst(key, algorithm, sig)

    def test_ecdsa_prehashed_any_hash_length(self):
        # A hash longer than the curve is cut, a shorter one padded: OpenSSL verifies the same way.
        for key in ("p11-ec", "p11-p384"):
            for algorithm in ("sha256", "sha384", "sha512", "sha1"):
                with self.subTest(key=key, algorithm=algorithm):
                    digest = self.digest_file(f"{key}-{algorithm}", algorithm)
                    sig, _ = self.sign(key, "ECDSA", digest)
                    done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", self.env.pubkey(key), "-in", digest,
                                   "-sigfile", sig)
                    self.assertIn("Signature Verified Successfully", done.stdout)

    def test_rsa_pkcs1_hashing_mechanisms(self):
        for algorithm in ("sha256", "sha384", "sha512"):
            with self.subTest(algorithm=algorithm):
                sig, _ = self.sign("p11-rsa", f"{algorithm.upper()}-RSA-PKCS", self.data)
                self.verify_dgst("p11-rsa", algorithm, sig)

    def test_rsa_pkcs_with_digest_info(self):
        prefixes = {"sha256": "3031300d060960864801650304020105000420",
                    "sha384": "3041300d060960864801650304020205000430",
                    "sha512": "3051300d060960864801650304020305000440"}
        for algorithm, prefix in prefixes.items():
            with self.subTest(algorithm=algorithm):
                h = hashlib.new(algorithm)
                h.update(b"digest info input")
                info = self.env.tmp.write(f"di-{algorithm}", bytes.fromhex(prefix) + h.digest())
                sig, _ = self.sign("p11-rsa", "RSA-PKCS", info, fmt=False)
                recovered = openssl("pkeyutl", "-verifyrecover", "-pubin", "-inkey", self.env.pubkey("p11-rsa"),
                                    "-in", sig, "-pkeyopt", "rsa_padding_mode:pkcs1").stdout_bytes
                with open(info, "rb") as f:
                    self.assertEqual(recovered, f.read(), "the signature carries exactly the caller's DigestInfo")

    def test_rsa_pss_mechanisms(self):
        for algorithm, size in (("sha256", 32), ("sha384", 48), ("sha512", 64)):
            with self.subTest(algorithm=algorithm):
                up = algorithm.upper()
                # pkcs11-tool derives the hash and MGF of the hashing PSS mechanisms itself.
                sig, _ = self.sign("p11-rsa", f"{up}-RSA-PKCS-PSS", self.data, "--salt-len", str(size), fmt=False)
                self.verify_dgst("p11-rsa", algorithm, sig, "rsa_padding_mode:pss", f"rsa_pss_saltlen:{size}")
                digest = self.digest_file(f"pss-{algorithm}", algorithm)
                sig, _ = self.sign("p11-rsa", "RSA-PKCS-PSS", digest, "--hash-algorithm", up, "--mgf",
                                   f"MGF1-{up}", "--salt-len", str(size), fmt=False)
                done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", self.env.pubkey("p11-rsa"), "-in", digest,
                               "-sigfile", sig, "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt",
                               f"digest:{algorithm}", "-pkeyopt", f"rsa_pss_saltlen:{size}")
                self.assertIn("Signature Verified Successfully", done.stdout)

    def test_digests(self):
        # Computed in the module (SunPKCS11 needs the PSS hashes listed to offer RSASSA-PSS).
        for algorithm in ("sha256", "sha384", "sha512"):
            with self.subTest(algorithm=algorithm):
                out = self.env.tmp.join(f"hash-{algorithm}")
                self.tool("--hash", "-m", algorithm.upper(), "--input-file", self.data, "--output-file", out)
                with open(out, "rb") as f, open(self.data, "rb") as d:
                    self.assertEqual(f.read(), hashlib.new(algorithm, d.read()).digest())

    # -- refusals --

    def assertRefused(self, done, ckr):
        self.assertNotEqual(done.rc, 0, done.describe())
        self.assertIn(ckr, done.stdout + done.stderr, done.describe())

    def test_sha1_digest_info_is_refused(self):
        info = self.env.tmp.write("di-sha1", bytes.fromhex("3021300906052b0e03021a05000414") + hashlib.sha1(b"x").digest())
        _, done = self.sign("p11-rsa", "RSA-PKCS", info, check=False, fmt=False)
        self.assertRefused(done, "CKR_DATA_INVALID")

    def test_pss_salt_other_than_hash_length_is_refused(self):
        _, done = self.sign("p11-rsa", "SHA256-RSA-PKCS-PSS", self.data, "--salt-len", "20", check=False, fmt=False)
        self.assertRefused(done, "CKR_MECHANISM_PARAM_INVALID")
        digest = self.digest_file("pss-bad", "sha256")
        _, done = self.sign("p11-rsa", "RSA-PKCS-PSS", digest, "--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA384",
                            check=False, fmt=False)
        self.assertRefused(done, "CKR_MECHANISM_PARAM_INVALID")

    def test_other_mechanisms_are_refused(self):
        _, done = self.sign("p11-rsa", "SHA1-RSA-PKCS", self.data, check=False, fmt=False)
        self.assertRefused(done, "CKR_MECHANISM_INVALID")
        _, done = self.sign("p11-ec", "SHA256-RSA-PKCS", self.data, check=False, fmt=False)
        self.assertRefused(done, "CKR_KEY_TYPE_INCONSISTENT")

    def test_decrypt_is_not_supported(self):
        done = self.tool("--decrypt", "--id", self.key_id("p11-rsa"), "-m", "RSA-PKCS", "--input-file", self.data, check=False)
        self.assertRefused(done, "CKR_FUNCTION_NOT_SUPPORTED")

    # -- GnuTLS --

    def test_p11tool_lists_everything(self):
        p11tool = require_program("p11tool")
        done = run([p11tool, "--provider", self.env.module, "--list-all", "pkcs11:token=keyward"],
                   env=self.env.client_env())
        out = done.stdout
        for name in self.env.keys:
            self.assertRegex(out, rf"pkcs11:.*object={re.escape(name)};type=private", out)
            self.assertRegex(out, rf"pkcs11:.*object={re.escape(name)};type=public", out)
        self.assertEqual(len(re.findall(r"type=cert", out)), 3, out)
        done = run([p11tool, "--provider", self.env.module, "--list-all-certs", "pkcs11:token=keyward"],
                   env=self.env.client_env())
        self.assertIn("p11-ec", done.stdout)
        self.assertIn("p11-rsa", done.stdout)

    # -- p11-kit --

    def test_p11kit_lists_module_and_token(self):
        # p11-kit reads root's module files from the system directories only; the test puts
        # ours there in a private mount namespace (the real ones are not touched): a directory
        # holding just keyward.module, bind-mounted over p11-kit's package module directory.
        modules = self.env.tmp.mkdir("p11kit-modules")
        with open(os.path.join(modules, "keyward.module"), "w") as f:
            # p11-kit resolves a relative path against its own module directory.
            f.write(f"module: {os.path.abspath(self.env.module)}\n")
        system_dir = "/usr/share/p11-kit/modules"
        self.assertTrue(os.path.isdir(system_dir), f"{system_dir} is missing: is p11-kit installed?")
        script = 'mount --bind "$0" "$1" && exec p11-kit list-modules'
        done = run([require_program("unshare"), "--mount", "--propagation", "private", "sh", "-c", script, modules,
                    system_dir], env=self.env.client_env(), context=self.env.agent.log_tail)
        out = done.stdout
        self.assertRegex(out, rf"keyward: {re.escape(os.path.abspath(self.env.module))}", out)
        self.assertIn("library-manufacturer: keyward", out)
        self.assertRegex(out, r"token: keyward\n(\s+\S.*\n)*\s+manufacturer: keyward", out)


if __name__ == "__main__":
    harness.main()
