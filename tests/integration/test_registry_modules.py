"""Finding registry modules by name, before anything is imported."""

from __future__ import annotations

import sys

from labox_prefect.registry_modules import NOT_FOUND_FIX, first_not_found


def test_the_first_module_python_cannot_find_is_named() -> None:
    assert first_not_found(["json", "no_such_mod_x", "no_such_mod_y"]) == "no_such_mod_x"


def test_every_module_found_is_none() -> None:
    assert first_not_found(["json", "email.message", "labox_prefect.core"]) is None
    assert first_not_found([]) is None


def test_a_missing_parent_package_or_a_relative_name_is_not_found() -> None:
    assert first_not_found(["no_such_pkg.mytypes"]) == "no_such_pkg.mytypes"
    assert first_not_found([".relative"]) == ".relative"


def test_looking_a_module_up_does_not_import_it() -> None:
    name = "xml.dom.pulldom"
    sys.modules.pop(name, None)
    assert first_not_found([name]) is None
    assert name not in sys.modules


def test_the_fix_names_both_ways_to_make_it_importable() -> None:
    assert "install the package" in NOT_FOUND_FIX
    assert "PYTHONPATH" in NOT_FOUND_FIX
