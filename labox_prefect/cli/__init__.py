"""The ``labox-prefect`` command: browse stored results and look after the database.

The command only reads records (and, with ``--block``, a block): it is not a use of Prefect
to report, so it opts out of Prefect's SDK telemetry, which Prefect starts (with a first-run
banner in a terminal) when it is imported. ``DO_NOT_TRACK`` is Prefect's documented client
switch; one the user set is kept.
"""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")  # before the import below imports Prefect

from labox_prefect.cli.main import app

__all__ = ["app"]
