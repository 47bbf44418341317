"""A registry module whose import raises (tests of labox_task(registry_modules=[...]))."""

from __future__ import annotations

raise RuntimeError("this module needs a setting the test never gives")
