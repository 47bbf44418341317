"""The core's layers at run time: contracts import no battery, S3 support loads on demand."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "labox_prefect" / "core"
CONTRACTS = ["registry.py", "storage.py", "serializer.py", "storable.py", "unpacker.py"]


@pytest.mark.parametrize("name", CONTRACTS)
def test_contracts_import_no_battery(name: str) -> None:
    tree = ast.parse((CORE / name).read_text())
    imported = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    batteries = [
        m
        for m in imported
        if m.startswith(("labox_prefect.core.builtin", "labox_prefect.core.extra"))
    ]
    assert batteries == []


def test_the_core_reads_no_environment_variable() -> None:
    """Where data goes is said by the caller; the integration's settings read LABOX_*."""
    readers = [
        path.relative_to(CORE).as_posix()
        for path in CORE.rglob("*.py")
        if re.search(r"\bos\.environ\b|\bgetenv\(|\bfrom os import environ\b", path.read_text())
    ]
    assert readers == []


def test_importing_the_core_loads_no_s3_client() -> None:
    code = (
        "import sys, labox_prefect.core, labox_prefect.core.builtin;"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'s3fs', 'botocore', 'aiobotocore', 'aiohttp'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
