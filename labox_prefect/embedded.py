"""The embedded default under a deployment: a warning once per flow run, or an error.

A flow run of a deployment runs on a worker. When that worker has no ``LABOX_DATABASE_URL``
(and the run's Labox block names no database), its results go to the embedded SQLite file
under ``LABOX_HOME`` of that machine, where no other worker, reader or UI will find them.
That is almost always a worker that was not configured, so it is said loudly: a warning in
the run's Prefect log, once per flow run, or, with ``LABOX_REQUIRE_CONFIGURED=true``, a
ResultTargetError that fails the task run before anything is saved.
"""

from __future__ import annotations

import threading
import uuid

from prefect.context import FlowRunContext
from prefect.logging import get_run_logger

from labox_prefect.errors import ResultTargetError
from labox_prefect.settings import current_settings
from labox_prefect.target import Target, is_embedded_default

_warned: set[uuid.UUID] = set()
_warned_lock = threading.Lock()


def check_target(target: Target) -> None:
    """Warn (or raise ResultTargetError) when a deployment's flow run saves to the embedded
    default; do nothing outside a deployment or with a configured database."""
    if not is_embedded_default(target):
        return
    settings = current_settings()
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.deployment_id is None:
        return
    where = f"the embedded SQLite file under LABOX_HOME ({settings.home_path})"
    fix = (
        "set LABOX_DATABASE_URL and LABOX_STORAGE_URL in the worker's environment (or the "
        "database_url and storage_url of the LaboxResultStorage block)"
    )
    if settings.require_configured:
        raise ResultTargetError(
            f"Flow run {flow_run.name!r} of deployment {flow_run.deployment_id} would save its "
            f"results to {where} on this machine, and LABOX_REQUIRE_CONFIGURED is set: {fix}."
        )
    with _warned_lock:
        if flow_run.id in _warned:
            return
        _warned.add(flow_run.id)
    get_run_logger().warning(
        "Labox saves the results of this deployment's flow run to %s on this machine, where "
        "no other worker or reader will find them: %s. LABOX_REQUIRE_CONFIGURED=true makes "
        "this an error.",
        where,
        fix,
    )


__all__ = ["check_target"]
