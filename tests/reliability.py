"""The reliability figures of a test run: cases tried per kind, and how many passed.

Tests of issue 10's kinds carry ``@pytest.mark.reliability(kind, cases=N)`` (``cases``: how many
inputs or faults the one test tries, default 1). At the end of a run the figures are printed; the
README's reliability table must state the same figures (``tests/test_readme_figures.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

KINDS = ("bad input", "injection", "isolation", "access", "faults", "secrets")
FIGURES_KEY = pytest.StashKey["Figures"]()


@dataclass
class Figure:
    tests: int = 0
    cases: int = 0
    passed_tests: int = 0
    passed_cases: int = 0


@dataclass
class Figures:
    collected: dict[str, Figure] = field(default_factory=lambda: {k: Figure() for k in KINDS})
    cases_of: dict[str, tuple[str, int]] = field(default_factory=dict)


def reliability_of(item: pytest.Item) -> tuple[str, int] | None:
    marker = item.get_closest_marker("reliability")
    if marker is None:
        return None
    kind = marker.args[0]
    if kind not in KINDS:
        raise pytest.UsageError(f"{item.nodeid}: reliability kind {kind!r} is not one of {KINDS}")
    return kind, int(marker.kwargs.get("cases", 1))


class ReliabilityFigures:
    """The pytest plugin that counts the figures and prints them after the run."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:  # what runs, after -k and -m deselection
            found = reliability_of(item)
            if found is not None:
                kind, cases = found
                self.figures.collected[kind].tests += 1
                self.figures.collected[kind].cases += cases
                self.figures.cases_of[item.nodeid] = found

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        found = self.figures.cases_of.get(report.nodeid)
        if found is not None and report.when == "call" and report.passed:
            kind, cases = found
            self.figures.collected[kind].passed_tests += 1
            self.figures.collected[kind].passed_cases += cases

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not self.figures.cases_of:
            return
        terminalreporter.section("reliability figures")
        for kind, figure in self.figures.collected.items():
            if not figure.tests:
                continue
            if config.option.collectonly:
                line = f"{kind}: {figure.cases:,} cases in {figure.tests} tests"
            else:
                line = (
                    f"{kind}: {figure.passed_cases:,} of {figure.cases:,} cases passed "
                    f"({figure.passed_tests} of {figure.tests} tests)"
                )
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability(kind, cases=1): counts towards the README's reliability figures"
    )
    figures = config.stash[FIGURES_KEY] = Figures()
    config.pluginmanager.register(ReliabilityFigures(figures), "reliability-figures")
