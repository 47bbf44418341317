"""Telling Prefect a result was saved, off the task's critical path.

``announce`` runs in the thread that saved the result: it summarizes the value (bounded
cost, labox_prefect.summary), emits the ``labox.result.saved`` event (a put on Prefect's own
events queue, labox_prefect.events) and, when artifacts are on, queues the artifact. One
daemon thread per process publishes queued artifacts in batches (whatever is queued, up to
``BATCH``, through one API client), each under the context it was queued from (so it reaches
the API the task's settings name). ``flush`` waits until the queue is empty; it runs at
interpreter exit, so a short script does not lose its last artifacts. Nothing here raises
into the task: failures are logged.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import queue
import threading
import time
from typing import Any

from prefect.client.orchestration import get_client

from labox_prefect.artifacts import artifact_request
from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.events import emit_result_saved
from labox_prefect.summary import ResultSummary, summarize

logger = logging.getLogger(__name__)

BATCH = 50
EXIT_FLUSH_SECONDS = 30.0

_Item = tuple[contextvars.Context, ResultSummary]


class ArtifactPublisher:
    """A queue of artifacts to create and the daemon thread that creates them."""

    def __init__(self) -> None:
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def put(self, summary: ResultSummary) -> None:
        """Queue the artifact of ``summary``, published from the caller's context."""
        self._ensure_thread()
        self._queue.put((contextvars.copy_context(), summary))

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait until every queued artifact is published (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child starts afresh
                self._queue, self._thread, self._pid = queue.Queue(), None, os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="labox-prefect-artifacts", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                for context, summaries in _by_context(batch):
                    context.run(_create, summaries)
            finally:
                for _ in batch:
                    self._queue.task_done()


def _by_context(batch: list[_Item]) -> list[tuple[contextvars.Context, list[ResultSummary]]]:
    """Consecutive items queued from one API URL share one client (and the first's context)."""
    groups: list[tuple[str | None, contextvars.Context, list[ResultSummary]]] = []
    for context, summary in batch:
        url = context.run(_api_url)
        if groups and groups[-1][0] == url:
            groups[-1][2].append(summary)
        else:
            groups.append((url, context, [summary]))
    return [(context, summaries) for _, context, summaries in groups]


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _create(summaries: list[ResultSummary]) -> None:
    try:
        # A client of our own: get_client() would hand back the run's client from the copied
        # context, which Prefect closes when the run ends (before a backlog is published).
        # Any httpx_settings other than the context client's (None) make get_client build one.
        with get_client(httpx_settings={}, sync_client=True) as client:
            for summary in summaries:
                try:
                    client.create_artifact(artifact=artifact_request(summary))
                except Exception as error:
                    _warn(summary, error)
    except Exception as error:
        for summary in summaries:
            _warn(summary, error)


def _warn(summary: ResultSummary, error: BaseException) -> None:
    logger.warning("labox: could not publish the artifact of %s: %s", summary.manifest_id, error)


publisher = ArtifactPublisher()
atexit.register(publisher.flush)


def announce(
    value: Any,
    manifest: ManifestRecord,
    contents: list[ContentRecord],
    class_name: str,
    database: str,
    artifacts: bool,
) -> None:
    """Emit the saved-result event and queue the artifact of ``value``; never raises."""
    try:
        summary = summarize(value, manifest, contents, class_name, database)
    except Exception as error:
        logger.warning("labox: could not summarize result %s: %s", manifest.id, error)
        return
    emit_result_saved(summary)
    if artifacts:
        publisher.put(summary)


def flush_publications(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Wait until this process's queued artifacts are published; False on timeout."""
    return publisher.flush(timeout)


__all__ = ["ArtifactPublisher", "announce", "flush_publications", "publisher"]
