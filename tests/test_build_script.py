"""The API-server build script reuses its cache only when the cached binary is the right version."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build-kube-apiserver.sh"


def check(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, "--check"],
        env={"PATH": "/usr/bin:/bin", "PRIMEHUB_SPAWNER_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def fake_binary(cache: Path, version_line: str) -> None:
    binary = cache / "bin" / "kube-apiserver"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    binary.chmod(0o755)


@pytest.mark.parametrize(
    ("version_line", "reusable"),
    [
        ("Kubernetes v1.20.2", True),
        ("Kubernetes v1.19.0", False),
        ("Kubernetes v1.20.2-dirty", False),
    ],
)
def test_cache_is_reused_only_for_the_right_version(tmp_path, version_line, reusable):
    fake_binary(tmp_path, version_line)
    result = check(tmp_path)
    assert (result.returncode == 0) is reusable, result.stdout
    assert ("cached" in result.stdout) is reusable


def test_missing_binary_needs_a_build(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 1
    assert "a build is needed" in result.stdout
