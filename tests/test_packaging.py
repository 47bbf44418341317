"""pyproject's package data: every file of the package that is not Python code ships in the
wheel (an error message that says "see VALUES.md" needs the file installed)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labox_prefect"


def test_every_data_file_of_the_package_is_package_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = {
        ROOT.joinpath(*name.split(".")): globs for name, globs in setuptools["package-data"].items()
    }
    data_files = [
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]

    assert any(path.name == "VALUES.md" for path in data_files)  # the walk finds data files
    for path in data_files:
        shipped = any(
            path.is_relative_to(folder)
            and any(fnmatch(path.relative_to(folder).as_posix(), glob) for glob in globs)
            for folder, globs in patterns.items()
        )
        assert shipped, f"{path.relative_to(ROOT)} is missing from package-data in pyproject"
