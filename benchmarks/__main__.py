"""``python -m benchmarks [name ...]`` (``make bench``): run the benchmarks on one test ground, print
each one's table and key figures, and write benchmarks/RESULTS.md when all of them ran."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import subprocess
import sys
import time
from pathlib import Path

from .stack import Target, machine, now, stack, table

BENCHMARKS = {
    "spawn_overhead": "1. Spawn overhead against plain KubeSpawner",
    "external_calls": "2. External calls per login, spawn-page view and spawn",
    "form_scale": "3. Options form render time as groups and resources grow",
    "concurrency": "4. 100 users spawning at once",
    "memory": "5. Hub memory with 10,000 logged-in users",
    "catalog_scale": "6. A catalog of 5,000 resources",
}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def main(names: list[str]) -> int:
    sections, keys, targets = [], [], []
    started = time.monotonic()
    async with stack() as shared:
        for name in names:
            print(f"\n## {BENCHMARKS[name]}\n", flush=True)
            module = importlib.import_module(f"benchmarks.{name}")
            began = time.monotonic()
            report, key, measured = await module.run(shared)
            print(report, flush=True)
            print(f"\n({time.monotonic() - began:.0f} s)", flush=True)
            about = re.sub(r"^\d+\. [^:]+: ", "", (module.__doc__ or "").strip())
            sections.append(f"## {BENCHMARKS[name]}\n\n{about}\n\n{report}\n")
            keys.append(key)
            targets.extend(measured)
    elapsed = time.monotonic() - started
    print("\nKey figures:")
    for key in keys:
        print(f"  {key}")
    summary = targets_table(targets)
    print(f"\nTargets:\n{summary}")
    print(f"(all in {elapsed / 60:.1f} min)")
    if names == list(BENCHMARKS):
        header = (
            f"# Benchmark results\n\nCommit `{commit()}`, {now()}, on {machine()}. "
            f"`make bench` took {elapsed / 60:.1f} min.\n\n"
            "Written by `python -m benchmarks`; every figure below was measured in that one run.\n\n"
            f"**Targets** (issue 20)\n\n{summary}\n\n"
            "**Key figures**\n\n" + "\n".join(f"- {key}" for key in keys) + "\n\n"
        )
        RESULTS.write_text(header + "\n".join(sections))
        print(f"wrote {RESULTS}")
    return 0


def targets_table(targets: list[Target]) -> str:
    """Each target with its figure and whether this run met it."""
    verdict = {True: "met", False: "NOT MET", None: "reported"}
    return table(
        ["measure", "target", "figure", ""],
        [[t.measure, t.target, t.figure, verdict[t.met]] for t in targets],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    chosen = parser.parse_args().names or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    sys.exit(asyncio.run(main(chosen)))
