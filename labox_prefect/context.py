"""Tags that say where a result came from, read from Prefect's run context.

The tag scheme is a contract (queries and the CLI rely on it):

- ``prefect.kind``: ``task`` or ``flow`` (whose return value the record is);
- ``prefect.flow_name``, ``prefect.flow_run_id``, ``prefect.flow_run_name``;
- ``prefect.task_name``, ``prefect.task_run_id`` (task results only);
- ``prefect.deployment_id``, ``prefect.deployment_name`` (when the flow run has a deployment;
  the name is ``<flow>/<deployment>``, unique in Prefect, since labox-prefect 0.2; records
  saved before hold the deployment's name alone);
- ``prefect.tag.<tag>`` = ``"true"`` for every Prefect run tag (of the task run and its flow
  run for a task result, of the flow run for a flow result);
- ``prefect.result_type``: the class of the value returned, as ``module:qualname`` (e.g.
  ``builtins:tuple``, ``shop.models:Order``), so that a process that has not imported the
  class is told which module to import (never imported because a record names it), and
  listings name the type without loading anything.

User tags are kept as given; their keys may not start with ``prefect.``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Mapping

from prefect.context import FlowRunContext, TaskRunContext

from labox_prefect.core import InvalidTagsError
from labox_prefect.core.classes import qualified_name
from labox_prefect.core.tags import check_tags

logger = logging.getLogger(__name__)

PREFIX = "prefect."
KIND = "prefect.kind"
FLOW_NAME = "prefect.flow_name"
FLOW_RUN_ID = "prefect.flow_run_id"
FLOW_RUN_NAME = "prefect.flow_run_name"
TASK_NAME = "prefect.task_name"
TASK_RUN_ID = "prefect.task_run_id"
DEPLOYMENT_ID = "prefect.deployment_id"
DEPLOYMENT_NAME = "prefect.deployment_name"
RUN_TAG_PREFIX = "prefect.tag."
RESULT_TYPE = "prefect.result_type"

_deployment_names: dict[uuid.UUID, str | None] = {}
_deployment_names_lock = threading.Lock()


def run_tag_key(tag: str) -> str:
    """The tag key recording the Prefect run tag ``tag``."""
    return f"{RUN_TAG_PREFIX}{tag}"


def check_user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """User tags as a dict; refuse the ``prefect.`` namespace, which the context fills."""
    checked = check_tags(tags)
    reserved = sorted(key for key in checked if key.startswith(PREFIX))
    if reserved:
        raise InvalidTagsError(
            f"Tag keys starting with {PREFIX!r} are set from the Prefect run context and "
            f"cannot be given: {', '.join(map(repr, reserved))}. Rename them (e.g. "
            f"{reserved[0].removeprefix(PREFIX)!r}); to add a Prefect run tag, give it to the "
            f"task or flow (labox_task(prefect_tags=[...])) and it is recorded as "
            f"'{RUN_TAG_PREFIX}<tag>'."
        )
    return checked


def run_context_tags() -> dict[str, str]:
    """Tags of the current task run, or of the current flow run, or none outside a run."""
    task_context = TaskRunContext.get()
    flow_context = FlowRunContext.get()
    tags: dict[str, str] = {}
    run_tags: set[str] = set()
    if task_context is not None:
        task_run = task_context.task_run
        tags[KIND] = "task"
        tags[TASK_NAME] = task_context.task.name
        tags[TASK_RUN_ID] = str(task_run.id)
        run_tags.update(task_run.tags)
        if task_run.flow_run_id is not None:
            tags[FLOW_RUN_ID] = str(task_run.flow_run_id)
    elif flow_context is not None:
        tags[KIND] = "flow"
    if flow_context is not None and flow_context.flow_run is not None:
        flow_run = flow_context.flow_run
        if task_context is None or task_context.task_run.flow_run_id in (None, flow_run.id):
            tags[FLOW_RUN_ID] = str(flow_run.id)
            tags[FLOW_RUN_NAME] = flow_run.name
            if flow_context.flow is not None:
                tags[FLOW_NAME] = flow_context.flow.name
            run_tags.update(flow_run.tags)
            if flow_run.deployment_id is not None:
                tags[DEPLOYMENT_ID] = str(flow_run.deployment_id)
                name = _deployment_name(flow_run.deployment_id)
                if name is not None:
                    tags[DEPLOYMENT_NAME] = name
    tags.update((run_tag_key(tag), "true") for tag in sorted(run_tags))
    return tags


def record_tags(
    user_tags: Mapping[str, str] | None, result_type: type[object] | None = None
) -> dict[str, str]:
    """The tags of a record saved now: the run context's, the result's type, then the user's.

    ``user_tags`` were checked once, when the task or serializer was made (check_user_tags);
    the core checks the whole set once more as it saves the record. ``result_type`` (the
    class of the value returned; None for a record of Prefect's own) gives
    ``prefect.result_type``.
    """
    tags = run_context_tags()
    if result_type is not None:
        tags[RESULT_TYPE] = qualified_name(result_type)
    return {**tags, **(user_tags or {})}


def names_of(names: Iterable[str]) -> list[str]:
    """Prefect run tags or module names as a list: one str is one name (as Prefect reads
    ``tags="x"``), never its characters."""
    return [names] if isinstance(names, str) else list(names)


def prefect_tag_filter(prefect_tags: Iterable[str]) -> dict[str, str]:
    """Tags matching records that carry every Prefect run tag in ``prefect_tags`` (one str
    is one tag)."""
    return {run_tag_key(tag): "true" for tag in names_of(prefect_tags)}


def _deployment_name(deployment_id: uuid.UUID) -> str | None:
    """``<flow>/<deployment>``, asked of the API once per deployment and process.

    A name is a nicety next to the id: if the API cannot say, the record keeps the id only.
    """
    with _deployment_names_lock:
        if deployment_id in _deployment_names:
            return _deployment_names[deployment_id]
    name: str | None = None
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            deployment = client.read_deployment(deployment_id)
            name = f"{client.read_flow(deployment.flow_id).name}/{deployment.name}"
    except Exception as error:  # the record must not fail for a label
        logger.warning("labox: could not read the name of deployment %s: %s", deployment_id, error)
    with _deployment_names_lock:
        _deployment_names[deployment_id] = name
    return name


__all__ = [
    "DEPLOYMENT_ID",
    "DEPLOYMENT_NAME",
    "FLOW_NAME",
    "FLOW_RUN_ID",
    "FLOW_RUN_NAME",
    "KIND",
    "RESULT_TYPE",
    "RUN_TAG_PREFIX",
    "TASK_NAME",
    "TASK_RUN_ID",
    "check_user_tags",
    "names_of",
    "prefect_tag_filter",
    "record_tags",
    "run_context_tags",
    "run_tag_key",
]
