"""The ``labox-prefect`` command: browse stored results and look after the database."""

from labox_prefect.cli.main import app

__all__ = ["app"]
