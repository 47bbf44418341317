"""The command opts out of Prefect's SDK telemetry and its first-run banner (cli/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from prefect._internal.analytics.ci_detection import CI_ENV_VARS  # guarded by the test below

_TELEMETRY_PROBE = """
import labox_prefect.cli
from prefect._internal.analytics.enabled import is_telemetry_enabled
print(is_telemetry_enabled())
"""


def test_the_command_starts_no_prefect_telemetry() -> None:
    """Prefect starts its SDK telemetry (and a first-run banner) when imported, unless
    DO_NOT_TRACK is set; the command sets it before importing Prefect. This test also fails
    when Prefect's private check moves."""
    env = {key: value for key, value in os.environ.items() if key != "DO_NOT_TRACK"}
    env = {key: value for key, value in env.items() if key not in CI_ENV_VARS}
    done = subprocess.run(
        [sys.executable, "-c", _TELEMETRY_PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert "anonymous usage" not in done.stderr
