"""scripts/check-layers: the real tree is clean, and each kind of include against the
layer order is caught (on a small tree made in a temporary directory)."""

import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("KEYWARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SOURCE, "scripts", "check-layers")


def run(root):
    return subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True, text=True)


class CheckLayersTest(unittest.TestCase):
    def make_tree(self, files):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for path, text in files.items():
            full = os.path.join(tmp.name, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        return tmp.name

    BASE = {
        "core/result.hpp": "#pragma once\n",
        "ipc/codec.hpp": '#include "core/result.hpp"\n',
        "pki/csr.hpp": '#include "ipc/codec.hpp"\n',
        "pkcs11/backend.cpp": '#include "pki/csr.hpp"\n#include <vector>\n',
        "tpm/backend.cpp": '#include "core/result.hpp"\n',
        "agent/lifecycle/issuer.hpp": '#include "pkcs11/backend.cpp"\n',
        "agent/lifecycle/issuers.cpp": '#include "agent/lifecycle/acme/acme.hpp"\n',
        "agent/lifecycle/acme/acme.hpp": '#include "agent/lifecycle/issuer.hpp"\n',
        "agent/lifecycle/cmp/cmp.hpp": '#include "agent/lifecycle/issuer.hpp"\n',
        "agent/server.cpp": '#include "agent/lifecycle/issuer.hpp"\n#include "server.hpp"\n',
        "agent/server.hpp": "#pragma once\n",
        "provider/key.cpp": '#include "ipc/codec.hpp"\n',
        "cli/main.cpp": '#include "pki/csr.hpp"\n',
        "tests/unit/test.cpp": '#include "agent/server.hpp"\n#include "cli/main.cpp"\n',
    }

    def test_real_tree_is_clean(self):
        done = run(SOURCE)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(" 0 include(s) against the layer order", done.stdout)

    def test_downward_includes_pass(self):
        done = run(self.make_tree(self.BASE))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def check_caught(self, path, text, expected):
        tree = dict(self.BASE)
        tree[path] = text
        done = run(self.make_tree(tree))
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn(f"{path}:1:", done.stdout)
        self.assertIn(expected, done.stdout)
        self.assertIn(" 1 include(s) against the layer order", done.stdout)

    def test_upward_include_is_caught(self):
        self.check_caught("core/hex.cpp", '#include "ipc/codec.hpp"\n', "core/ may not include ipc/codec.hpp")

    def test_backend_including_the_agent_is_caught(self):
        self.check_caught("tpm/session.cpp", '#include "agent/server.hpp"\n', "tpm/ may not include agent/server.hpp")

    def test_sibling_backends_are_caught(self):
        self.check_caught("tpm/session.cpp", '#include "pkcs11/backend.cpp"\n', "tpm/ may not include")

    def test_agent_including_a_front_end_is_caught(self):
        self.check_caught("agent/csr.cpp", '#include "cli/main.cpp"\n', "agent/ may not include cli/main.cpp")

    def test_front_end_including_the_agent_is_caught(self):
        self.check_caught("provider/store.cpp", '#include "agent/server.hpp"\n', "provider/ may not include")

    def test_provider_may_not_use_pki(self):
        self.check_caught("provider/store.cpp", '#include "pki/csr.hpp"\n', "provider/ may not include pki/csr.hpp")

    def test_lifecycle_naming_an_issuer_is_caught(self):
        self.check_caught("agent/lifecycle/lifecycle.cpp", '#include "agent/lifecycle/cmp/cmp.hpp"\n',
                          "only agent/lifecycle/issuers.cpp names issuer implementations")

    def test_issuers_including_each_other_are_caught(self):
        self.check_caught("agent/lifecycle/cmp/x.cpp", '#include "agent/lifecycle/acme/acme.hpp"\n',
                          "issuers are independent")

    def test_relative_include_is_resolved_against_its_folder(self):
        self.check_caught("core/x.cpp", '#include "../agent/server.hpp"\n', "core/ may not include")


if __name__ == "__main__":
    unittest.main(verbosity=2)
