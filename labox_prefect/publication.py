"""Telling Prefect a result was saved, off the task's critical path.

``announce`` runs in the thread that saved the result and only queues what it was given (the
value, its records, and the caller's context). One daemon thread per process works the
queue in batches: woken by a result, it lingers ``LINGER_SECONDS`` so that the results of
the next tasks join the batch (a flow of small tasks wakes it, and Prefect's events
worker, once per batch rather than once per task: each wake-up takes the GIL from the tasks'
thread), then summarizes each value (bounded cost, labox_prefect.summary), emits the
``labox.result.saved`` event (a put on Prefect's own events queue, labox_prefect.events)
and, when artifacts are on, creates the artifacts of what it took in one batch (whatever is
queued, up to ``BATCH``, through one API client), each under the context it was queued from
(so it reaches the API the task's settings name). The value is read there, moments after
the task returned it: a value changed in place meanwhile shows the change in its preview.

``flush`` cuts the linger short and waits until the queue is empty. At interpreter exit it
runs before Prefect's own services drain (it is registered with them, after them, and they
run last to first), so the last events and artifacts of a short script still reach
Prefect's events queue and the API; a plain ``atexit`` hook would run after that queue has
stopped. Nothing here raises into
the task: failures are logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import get_client

from labox_prefect.artifacts import artifact_request
from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.events import emit_result_saved
from labox_prefect.summary import ResultSummary, summarize

logger = logging.getLogger(__name__)

BATCH = 50
"""Results published together at most (one API client for their artifacts)."""
LINGER_SECONDS = 0.1
"""How long the publisher waits for more results after the first of a batch."""
EXIT_FLUSH_SECONDS = 30.0


@dataclass(frozen=True)
class _Saved:
    """A result just saved, as ``announce`` was given it."""

    value: Any
    manifest: ManifestRecord
    contents: list[ContentRecord]
    class_name: str
    database: str
    artifacts: bool


_Item = tuple[contextvars.Context, _Saved]


class ArtifactPublisher:
    """A queue of saved results to announce and the daemon thread that announces them."""

    def __init__(self, linger: float = LINGER_SECONDS) -> None:
        self._linger = linger
        self._hurry = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._exit_hook = False

    def put(self, saved: _Saved) -> None:
        """Queue ``saved``, announced from the caller's context."""
        self._ensure_thread()
        self._queue.put((contextvars.copy_context(), saved))

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait until every queued result is published (or failed); False on timeout.

        The publisher stops lingering while a flush waits.
        """
        deadline = time.monotonic() + timeout
        self._hurry.set()
        try:
            with self._queue.all_tasks_done:
                while self._queue.unfinished_tasks:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._queue.all_tasks_done.wait(remaining)
        finally:
            self._hurry.clear()
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child starts afresh
                self._queue, self._thread, self._pid = queue.Queue(), None, os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="labox-prefect-publisher", daemon=True
                )
                self._thread.start()
                if not self._exit_hook:
                    # Prefect's services (its events queue among them) drain in
                    # threading's exit hooks, last registered first: registered after
                    # theirs (a task run emits its own events before its result is
                    # announced), this flush runs while their queues still take events.
                    with contextlib.suppress(RuntimeError):  # already shutting down
                        threading._register_atexit(self.flush)  # type: ignore[attr-defined]
                        self._exit_hook = True

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._hurry.wait(self._linger)  # the next tasks' results join this batch
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                _publish(batch)
            finally:
                done = len(batch)
                del batch  # no value outlives its announcement while the queue is idle
                for _ in range(done):
                    self._queue.task_done()


def _publish(batch: list[_Item]) -> None:
    """Tell every saved result of ``batch``, then create the artifacts asked for."""
    published: list[tuple[contextvars.Context, ResultSummary]] = []
    for context, saved in batch:
        summary = context.run(_tell, saved)
        if summary is not None and saved.artifacts:
            published.append((context, summary))
    for context, summaries in _by_context(published):
        context.run(_create, summaries)


def _tell(saved: _Saved) -> ResultSummary | None:
    """Summarize ``saved`` and emit its event; None (logged) when it cannot be summarized."""
    try:
        summary = summarize(
            saved.value,
            saved.manifest,
            saved.contents,
            saved.class_name,
            saved.database,
            preview=saved.artifacts,
        )
    except Exception as error:
        logger.warning("labox: could not summarize result %s: %s", saved.manifest.id, error)
        return None
    emit_result_saved(summary)
    return summary


def _by_context(
    batch: list[tuple[contextvars.Context, ResultSummary]],
) -> list[tuple[contextvars.Context, list[ResultSummary]]]:
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


def announce(
    value: Any,
    manifest: ManifestRecord,
    contents: list[ContentRecord],
    class_name: str,
    database: str,
    artifacts: bool,
) -> None:
    """Queue the saved-result event and, when ``artifacts``, the artifact of ``value``.

    Both are made on the publisher thread (see the module docstring); never raises.
    """
    try:
        publisher.put(_Saved(value, manifest, contents, class_name, database, artifacts))
    except Exception as error:
        logger.warning("labox: could not queue the announcement of %s: %s", manifest.id, error)


def flush_publications(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Wait until this process's queued events and artifacts are out; False on timeout."""
    return publisher.flush(timeout)


__all__ = ["ArtifactPublisher", "announce", "flush_publications", "publisher"]
