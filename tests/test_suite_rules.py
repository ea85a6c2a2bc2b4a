"""The test suite's own rules: without ../shared, the tests that need it skip, unless
METAMERS_REQUIRE_SHARED=1 (as .ci/run sets it) turns that skip into a failure."""

from __future__ import annotations

import os
import subprocess
import sys

NEEDS_SHARED = "tests/test_images.py::test_shipped_mnist_test_subset_equals_the_test_set_at_its_indices"


def _run(repo, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if k != "METAMERS_REQUIRE_SHARED"}
    environ.update(METAMERS_SHARED=str(tmp_path / "no-shared-here"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", NEEDS_SHARED],
                          cwd=repo, env=environ, capture_output=True, text=True)


def test_a_missing_shared_folder_skips_outside_ci(repo, tmp_path):
    out = _run(repo, tmp_path)
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout and "no-shared-here (real data and weights beside the repository) is absent" \
        in out.stdout


def test_a_missing_shared_folder_fails_in_ci(repo, tmp_path):
    out = _run(repo, tmp_path, METAMERS_REQUIRE_SHARED="1")
    assert out.returncode == 1, out.stdout
    assert "1 error" in out.stdout or "1 failed" in out.stdout
    assert "METAMERS_REQUIRE_SHARED=1 forbids skipping the tests that need it" in out.stdout
