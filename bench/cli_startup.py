"""What starting the ``labox-prefect`` command costs: two source trees, interleaved A B A B.

Each round starts a fresh interpreter per tree and runs the command's entry point with the
given arguments (default ``--help``), in the tree's folder and with ``PYTHONPATH`` set to
it, so the same installed packages serve both. Figures per tree, medians over ``--rounds``
(min-max): wall seconds and CPU seconds (user + system of the child), and the ratio A / B of
the medians.
The load average is printed before and after (the machine is shared).

Usage: ``python bench/cli_startup.py --a /work/main --b . [--rounds 7] [-- results --help]``.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENTRY = "import sys; from labox_prefect.cli import app; sys.argv[0] = 'labox-prefect'; app()"


def run_once(tree: Path, arguments: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one start of the command from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    before, started = os.times(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, *arguments],
        capture_output=True,
        env=env,
        cwd=tree,  # `python -c` puts the working folder first on sys.path
        check=False,
    )
    wall, after = time.perf_counter() - started, os.times()
    if done.returncode != 0:
        raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stderr.decode()}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a", type=Path, required=True, help="source tree A (e.g. /work/main)")
    parser.add_argument("--b", type=Path, required=True, help="source tree B (e.g. this one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("arguments", nargs="*", default=["--help"])
    options = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    walls: dict[str, list[float]] = {"A": [], "B": []}
    cpus: dict[str, list[float]] = {"A": [], "B": []}
    for _ in range(options.rounds):  # interleaved: A B A B ...
        for name, tree in (("A", options.a), ("B", options.b)):
            wall, cpu = run_once(tree, options.arguments)
            walls[name].append(wall)
            cpus[name].append(cpu)
    print(f"load average after: {os.getloadavg()}")
    print(f"command: labox-prefect {' '.join(options.arguments)}; rounds: {options.rounds}")
    for name, tree in (("A", options.a), ("B", options.b)):
        print(f"{name} {tree}: wall {summary(walls[name])}, CPU {summary(cpus[name])}")
    for label, figures in (("wall", walls), ("CPU", cpus)):
        ratio = statistics.median(figures["A"]) / statistics.median(figures["B"])
        per_round = [a / b for a, b in zip(figures["A"], figures["B"], strict=True)]
        print(f"A / B {label}: {ratio:.2f}x (per round {min(per_round):.2f}-{max(per_round):.2f})")


if __name__ == "__main__":
    main()
