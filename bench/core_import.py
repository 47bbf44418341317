"""What `import labox_prefect.core` costs: CPU seconds and the core's own share of -X importtime.

Each round starts a fresh interpreter. Two figures, medians over ``--rounds`` (min-max):

- CPU time (user + system) of ``python -c "import labox_prefect.core"`` minus that of
  ``python -c "pass"``: everything the import costs today, the package's ``__init__`` (which
  may import Prefect) included;
- the same with ``labox_prefect``'s ``__init__`` left out (the package is entered as an
  empty package whose path is the real folder), i.e. what the core itself costs;
- from ``-X importtime`` of the first: the cumulative microseconds of ``labox_prefect.core``
  (the core and what it alone imports; modules the package ``__init__`` imported first are
  not counted again).

Usage: ``python bench/core_import.py [--rounds 7]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAIN = "import labox_prefect.core"
CORE_ONLY = (
    "import sys, types; p = types.ModuleType('labox_prefect'); "
    f"p.__path__ = [{str(ROOT / 'labox_prefect')!r}]; sys.modules['labox_prefect'] = p; "
    "import labox_prefect.core"
)


def cpu_seconds(code: str, *flags: str) -> tuple[float, str]:
    before = os.times()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True
    )
    after = os.times()
    used = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return used, done.stderr


def core_cumulative_us(importtime: str) -> int:
    for line in importtime.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*labox_prefect\.core$", line)
        if match:
            return int(match.group(1))
    return 0


def summary(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):.3f} {unit} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    bare, plain, core_only, own = [], [], [], []
    for _ in range(rounds):  # interleaved: A B C A B C ...
        bare.append(cpu_seconds("pass")[0])
        plain.append(cpu_seconds(PLAIN)[0])
        core_only.append(cpu_seconds(CORE_ONLY)[0])
        own.append(core_cumulative_us(cpu_seconds(PLAIN, "-X", "importtime")[1]) / 1e6)
    base = statistics.median(bare)
    print(f"rounds: {rounds}; interpreter start-up: {summary(bare, 's CPU')}")
    print(
        f"import labox_prefect.core (package __init__ included): "
        f"{summary([p - base for p in plain], 's CPU')}"
    )
    print(
        f"import labox_prefect.core (core only, empty package __init__): "
        f"{summary([c - base for c in core_only], 's CPU')}"
    )
    print(f"-X importtime, labox_prefect.core cumulative: {summary(own, 's')}")


if __name__ == "__main__":
    main()
