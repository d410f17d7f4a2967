"""The README's reliability table states the figures the suite collects (tests/reliability.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.reliability import KINDS

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_states_the_suites_reliability_figures():
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    suite = {
        kind: (cases, tests)
        for kind, cases, tests in re.findall(
            r"^([a-z ]+): ([\d,]+) cases in (\d+) tests$", collected, re.M
        )
    }
    readme = (ROOT / "README.md").read_text()
    stated = {
        kind: (cases, tests)
        for kind, cases, tests in re.findall(r"^\| ([a-z ]+) \| ([\d,]+) \| (\d+) \|", readme, re.M)
    }
    assert set(suite) == set(KINDS)  # every kind has tests, and the pattern reads them
    assert stated == suite


def test_the_readme_names_the_pinned_keycloak_version():
    from devstack.keycloak import KEYCLOAK_VERSION

    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"Keycloak\*{0,2} (\d+\.\d+\.\d+)", readme))
    assert named == {KEYCLOAK_VERSION}
