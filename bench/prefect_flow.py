"""labox_task against Prefect's default result persistence, side by side in one run.

Targets (issue 3):
(a) a flow of 200 tasks with small results costs at most 1.10x the wall time of Prefect's
    default persistence (``@task(persist_result=True)``: pickle + local files, default cache
    policy) with UI artifacts off; the artifacts' own cost is reported beside it;
(b) a task returning a 1M-row DataFrame persists >= 2x faster and with <= 0.5x the peak
    memory of Prefect's default.

Everything runs on Prefect's ephemeral API (a local server subprocess on a temporary SQLite
database) with the fast settings of DESIGN section 3, and Labox on its embedded default
(SQLite + a folder), all under a temporary folder. Prefect's INFO logs are off for every
variant alike (that makes the shared part cheaper, so the ratios stricter). (b) runs each
variant in a fresh process; its peak memory is the process's VmHWM minus that of a process
that builds the same frame in the same task without persisting it, and its persist time is
the task call's wall time minus that process's. Times are taken inside the flow, around the
task calls (for labox_task, until the events and artifacts it queued are published:
``flush_publications``): a flow's own exit waits up to a second for Prefect's heartbeat
thread, which would round every flow to whole seconds. Each round prints the load average.
Nothing here asserts a time.

``--against DIR`` compares (a) between two checkouts instead: each round runs one fresh
process per checkout (this one and DIR, in alternating order), each timing 5 interleaved
pairs of Prefect's default and labox_task (artifacts off) after a warm-up, and prints the
ratio of each; then the medians of the rounds with their range.

Run: .venv/bin/python bench/prefect_flow.py [--rounds N] [--frame-runs N] [--skip-frame]
     .venv/bin/python bench/prefect_flow.py --against ../other-checkout [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_TASKS = 200
N_ROWS = 1_000_000

_FAST_SETTINGS = {
    **{
        f"PREFECT_API_SERVICES_{service}_ENABLED": "false"
        for service in (
            "EVENT_PERSISTER",
            "TRIGGERS",
            "TASK_RUN_RECORDER",
            "SCHEDULER",
            "LATE_RUNS",
            "FOREMAN",
        )
    },
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def configure(root: Path, api_url: str | None = None) -> None:
    """Point Prefect and Labox at ``root``; must run before prefect is imported."""
    os.environ.update(_FAST_SETTINGS)
    os.environ["PREFECT_HOME"] = str(root / "prefect-home")
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(root / "prefect-results")
    os.environ["LABOX_HOME"] = str(root / "labox")
    os.environ["LABOX_ARTIFACTS"] = "false"
    for name in ("LABOX_DATABASE_URL", "LABOX_STORAGE_URL", "PREFECT_API_URL"):
        os.environ.pop(name, None)
    if api_url is not None:
        os.environ["PREFECT_API_URL"] = api_url


# --- (a) 200 small results ------------------------------------------------------------------


def small_flows() -> dict[str, Callable[[], float]]:
    from prefect import flow, task

    from labox_prefect import labox_task
    from labox_prefect.publication import flush_publications

    def value(i: int) -> dict[str, int]:
        return {"i": i, "square": i * i}

    def value_with_artifact(i: int) -> dict[str, int]:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(f"**value** {i}", key="small-value")
        return value(i)

    unpersisted = task(persist_result=False, name="small")(value)
    default = task(persist_result=True, name="small")(value)
    default_artifact = task(persist_result=True, name="small")(value_with_artifact)
    labox = labox_task(value)

    def many(run: Any, finish: Callable[[], object] = lambda: None) -> Callable[[], float]:
        @flow(name="small-results")
        def pipeline() -> float:
            start = time.perf_counter()
            for i in range(N_TASKS):
                run(i)
            finish()
            return time.perf_counter() - start

        return pipeline

    return {
        "none": many(unpersisted),
        "default": many(default),
        "default+artifact": many(default_artifact),
        # Its events and artifacts are published off the tasks' thread: the time includes
        # them (until they are on Prefect's events queue, where Prefect's own events wait).
        "labox": many(labox, flush_publications),
    }


def run_small(rounds: int) -> None:
    flows = small_flows()
    variants: list[tuple[str, str, str]] = [
        ("no persistence", "none", "false"),
        ("Prefect default", "default", "false"),
        ("labox, artifacts off", "labox", "false"),
        ("labox, artifacts on", "labox", "true"),
        ("Prefect default + its own artifact", "default+artifact", "false"),
    ]

    def run(index: int) -> float:
        _, flow_key, artifacts = variants[index]
        os.environ["LABOX_ARTIFACTS"] = artifacts
        return flows[flow_key]()

    for index in range(len(variants)):  # warm-up: imports, block saved, schema made
        run(index)
    times: list[list[float]] = [[] for _ in variants]
    for round_number in range(rounds):
        order = list(range(len(variants)))
        shift = round_number % len(order)
        order = order[shift:] + order[:shift]
        for index in order:
            times[index].append(run(index))
        shown = [f"{v[0]} {t[-1] * 1e3:.0f} ms" for v, t in zip(variants, times, strict=True)]
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"round {round_number + 1}: " + ", ".join(shown) + f" (load average {load})")
    med = [statistics.median(t) for t in times]
    none, default, labox_off, labox_on, default_artifact = med
    print(f"\n(a) flow of {N_TASKS} tasks with small results, median of {rounds} rounds:")
    for (label, _, _), seconds in zip(variants, med, strict=True):
        per_task = (seconds - none) / N_TASKS * 1e3
        print(
            f"  {label:<22} {seconds * 1e3:7.0f} ms  "
            f"({seconds / N_TASKS * 1e3:5.2f} ms/task, persistence {per_task:+5.2f} ms/task)"
        )
    print(
        f"  labox (artifacts off) / Prefect default: {labox_off / default:.3f}x (target <= 1.10x)"
    )
    print(
        f"  artifacts' own cost: {(labox_on - labox_off) / N_TASKS * 1e3:.2f} ms/task "
        f"(labox with artifacts on: {labox_on / default:.3f}x Prefect default, target <= 1.25x)"
    )
    print(
        f"  Prefect's own create_markdown_artifact in each task: "
        f"{(default_artifact - default) / N_TASKS * 1e3:.2f} ms/task "
        f"({default_artifact / default:.3f}x Prefect default)"
    )
    for label, index in (("artifacts off", 2), ("artifacts on", 3)):
        ratios = [t / d for t, d in zip(times[index], times[1], strict=True)]
        print(
            f"  per-round ratio, labox {label} / Prefect default: median "
            f"{statistics.median(ratios):.3f}x (min {min(ratios):.3f}, max {max(ratios):.3f})"
        )


# --- (a) between two checkouts ---------------------------------------------------------------

AB_PAIRS = 5


def ab_child(checkout: Path) -> None:
    """Run in a fresh process with ``checkout``'s package: print one JSON line of medians."""
    sys.path.insert(0, str(checkout))
    import labox_prefect

    assert Path(labox_prefect.__file__).is_relative_to(checkout), labox_prefect.__file__
    with tempfile.TemporaryDirectory(prefix="labox-bench-") as tmp:
        configure(Path(tmp))
        flows = small_flows()
        for key in ("default", "labox", "default", "labox"):  # warm-up
            flows[key]()
        times: dict[str, list[float]] = {"default": [], "labox": []}
        for pair in range(AB_PAIRS):
            for key in ("default", "labox") if pair % 2 else ("labox", "default"):
                times[key].append(flows[key]())
    ratios = [a / b for a, b in zip(times["labox"], times["default"], strict=True)]
    medians = {key: statistics.median(values) for key, values in times.items()}
    print(json.dumps({"ratio": statistics.median(ratios), **medians}))


def run_against(other: Path, rounds: int) -> None:
    checkouts = {"this checkout": Path(__file__).resolve().parents[1], str(other): other}
    got: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for round_number in range(rounds):
        names = list(checkouts) if round_number % 2 == 0 else list(reversed(checkouts))
        for name in names:
            done = subprocess.run(
                [sys.executable, __file__, "--ab-child", str(checkouts[name])],
                capture_output=True,
                text=True,
                check=True,
            )
            got[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        shown = ", ".join(f"{name} {got[name][-1]['ratio']:.3f}x" for name in checkouts)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"round {round_number + 1}: labox / default: {shown} (load average {load})")
    print(f"\n(a) labox_task (artifacts off) / Prefect default, {rounds} rounds of {AB_PAIRS}:")
    for name, results in got.items():
        ratios = [result["ratio"] for result in results]
        default = statistics.median(result["default"] for result in results)
        labox = statistics.median(result["labox"] for result in results)
        print(
            f"  {name}: median {statistics.median(ratios):.3f}x (min {min(ratios):.3f}, "
            f"max {max(ratios):.3f}); default {default * 1e3:.0f} ms, labox {labox * 1e3:.0f} ms"
        )


# --- (b) one 1M-row DataFrame ---------------------------------------------------------------


def frame_child(variant: str, runs: int) -> None:
    """Run in a fresh process: persist one frame ``runs`` times, print times and VmHWM."""
    import numpy as np
    import pandas as pd
    import pyarrow  # noqa: F401  (same imports in every variant)
    from prefect import flow, task

    from labox_prefect import labox_task

    def build() -> pd.DataFrame:
        rng = np.random.default_rng(0)
        return pd.DataFrame(
            {
                "id": np.arange(N_ROWS),
                "x": rng.random(N_ROWS),
                "y": rng.integers(0, 1000, N_ROWS),
                "label": pd.Categorical(rng.choice(["a", "b", "c"], N_ROWS)),
            }
        )

    decorate: dict[str, Callable[[Any], Any]] = {
        "none": task(persist_result=False, name="frame"),
        "default": task(persist_result=True, name="frame"),
        "labox": labox_task,
    }
    make = decorate[variant](build)

    @flow(name="one-frame")
    def pipeline() -> float:
        start = time.perf_counter()
        make()
        return time.perf_counter() - start

    # The first run warms up (imports, block, schema).
    times = [pipeline() for _ in range(runs + 1)]
    print(json.dumps({"times": times[1:], "hwm_kib": _vm_hwm_kib()}))


def _vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_frame(root: Path, api_url: str, runs: int) -> None:
    labels = {"none": "no persistence", "default": "Prefect default", "labox": "labox_task"}
    results: dict[str, dict[str, Any]] = {}
    for variant in ("none", "default", "labox"):
        env = dict(os.environ)
        env["PREFECT_API_URL"] = api_url
        done = subprocess.run(
            [sys.executable, __file__, "--frame-child", variant, "--frame-runs", str(runs)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=root,
        )
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    base_time = statistics.median(results["none"]["times"])
    base_hwm = results["none"]["hwm_kib"]
    print(f"\n(b) task returning a {N_ROWS:,}-row DataFrame, fresh process each, median of {runs}:")
    persist: dict[str, float] = {}
    peak: dict[str, float] = {}
    for variant, label in labels.items():
        task_time = statistics.median(results[variant]["times"])
        persist[variant] = task_time - base_time
        peak[variant] = (results[variant]["hwm_kib"] - base_hwm) / 1024
        print(
            f"  {label:<16} task {task_time * 1e3:6.0f} ms, "
            f"persist {persist[variant] * 1e3:6.0f} ms, "
            f"peak memory {results[variant]['hwm_kib'] / 1024:6.0f} MiB "
            f"(+{peak[variant]:.0f} MiB over building the frame)"
        )
    print(
        f"  labox_task persists {persist['default'] / persist['labox']:.2f}x faster than "
        f"Prefect default (target >= 2x)"
    )
    print(
        f"  labox_task peak memory: {peak['labox'] / peak['default']:.2f}x Prefect default's "
        f"(target <= 0.5x)"
    )


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frame-runs", type=int, default=3)
    parser.add_argument("--skip-frame", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--frame-child", choices=["none", "default", "labox"])
    parser.add_argument("--against", type=Path, help="another checkout: an A/B of (a) only")
    parser.add_argument("--ab-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.frame_child:
        frame_child(args.frame_child, args.frame_runs)
        return
    if args.ab_child:
        ab_child(args.ab_child.resolve())
        return
    if args.against:
        run_against(args.against.resolve(), args.rounds)
        return
    with tempfile.TemporaryDirectory(prefix="labox-bench-") as tmp:
        root = Path(tmp)
        configure(root)
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the ephemeral API, shared with (b)'s processes
        server.start()
        try:
            if not args.skip_small:
                run_small(args.rounds)
            if not args.skip_frame:
                run_frame(root, server.api_url, args.frame_runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
