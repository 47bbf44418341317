"""Telling Prefect a result was saved, off the task's critical path.

``announce`` runs in the thread that saved the result and only queues what it was given (the
value, its records, and the caller's scope: Prefect's settings, flow run and task run,
labox_prefect.events.RunScope). One daemon thread per process works the
queue in batches: woken by a result, it lingers ``LINGER_SECONDS`` so that the results of
the next tasks join the batch (a flow of small tasks wakes it, and Prefect's events
worker, once per batch rather than once per task: each wake-up takes the GIL from the tasks'
thread), then summarizes each value (bounded cost, labox_prefect.summary) and emits the
``labox.result.saved`` event (a put on Prefect's own events queue, labox_prefect.events).

When artifacts are on, each summary also becomes a row of its flow run's catalog
(labox_prefect.artifacts): the catalog's artifact is created ``CATALOG_SECONDS`` after the
run's first result and then updated with all its rows at most every ``CATALOG_SECONDS`` per
run (a call of Prefect's API every few seconds for a busy flow, instead of one per result:
each call costs the API server's work as well, on the same machine for a local server, and
a short flow's catalog is one call, made when the publisher is flushed at its end or at
exit), under the scope the latest row was queued from (so it reaches the API the task's
settings name), through an API client of the publisher's own. The thread keeps the
catalogs of the ``CATALOGS_KEPT`` runs that published last (at most ``ROWS_SHOWN`` rows
each) and forgets older ones; a forgotten run that saves again starts a new version of its
key. The value is read moments after the task returned it: a value changed in place
meanwhile shows the change in its preview.

``flush`` cuts the linger short and waits until the queue is empty and every catalog is
published. At interpreter exit it runs before Prefect's own services drain (it is
registered with them, after them, and they run last to first), so the last events and
artifacts of a short script still reach Prefect's events queue and the API; a plain
``atexit`` hook would run after that queue has stopped. Nothing here raises into the task:
failures are logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from prefect.client.schemas.objects import TaskRun

from labox_prefect.api_clients import own_sync_client
from labox_prefect.artifacts import Catalog
from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.events import Outgoing, RunResources, RunScope, Workers, result_saved, send_all
from labox_prefect.summary import ResultSummary, summarize

logger = logging.getLogger(__name__)

BATCH = 50
"""Results told together at most."""
LINGER_SECONDS = 0.1
"""How long the publisher waits for more results after the first of a batch."""
CATALOG_SECONDS = 5.0
"""A run's catalog artifact is created this long after its first result and updated at
most this often (a flush publishes at once)."""
CATALOGS_KEPT = 16
"""Runs whose catalog the publisher keeps (the ones that published last)."""
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


_Item = tuple[RunScope, _Saved]


@dataclass
class _Run:
    """A run's catalog and its artifact: made or not, rows not yet published, and when."""

    catalog: Catalog
    published_at: float
    """When its rows were last published (monotonic seconds), or its first row's time."""
    artifact_id: uuid.UUID | None = None
    context: contextvars.Context | None = None
    """The latest row's scope (RunScope.context) while rows wait, then dropped."""

    @property
    def due_at(self) -> float | None:
        """When its waiting rows are published (monotonic seconds), or None: none wait."""
        if self.context is None:
            return None
        return self.published_at + CATALOG_SECONDS


class _Catalogs:
    """The catalogs of the runs that published last; used by the publisher thread only."""

    def __init__(self, kept: int = CATALOGS_KEPT) -> None:
        self._kept = kept
        self._runs: OrderedDict[uuid.UUID, _Run] = OrderedDict()
        self._evicted: list[_Run] = []

    def add(self, context: contextvars.Context, summary: ResultSummary) -> None:
        group = summary.flow_run_id or summary.task_run_id or summary.manifest_id
        run = self._runs.get(group)
        if run is None:
            run = self._runs[group] = _Run(Catalog.of(summary), time.monotonic())
            if len(self._runs) > self._kept:
                _, oldest = self._runs.popitem(last=False)
                if oldest.context is not None:  # published before it is forgotten
                    self._evicted.append(oldest)
        self._runs.move_to_end(group)
        run.catalog.add(summary)
        run.context = context

    def next_due(self) -> float | None:
        """The earliest time a catalog's waiting rows are due, or None: none wait."""
        times = [run.due_at for run in self._runs.values()]
        return min((due for due in times if due is not None), default=None)

    def publish(self, everything: bool) -> None:
        """Create or update the artifacts whose rows are due (every waiting one if
        ``everything``); one API client per API URL."""
        now = time.monotonic()
        due = self._evicted + [
            run
            for run in self._runs.values()
            if run.due_at is not None and (everything or run.due_at <= now)
        ]
        self._evicted = []
        for context, runs in _by_api(due):
            context.run(_publish_catalogs, runs)
        for run in due:
            run.context, run.published_at = None, time.monotonic()


class ArtifactPublisher:
    """A queue of saved results to announce and the daemon thread that announces them."""

    def __init__(self, linger: float = LINGER_SECONDS) -> None:
        self._linger = linger
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._exit_hook = False
        self._start_afresh()

    def _start_afresh(self) -> None:
        """Empty state for this process (a forked child starts afresh)."""
        self._pid = os.getpid()
        self._state = threading.Lock()
        self._wake = threading.Condition(self._state)  # the publisher waits for work
        self._drained = threading.Condition(self._state)  # flushes wait for the publisher
        self._items: deque[_Item] = deque()
        self._in_flight = 0
        self._next_due: float | None = None
        self._flushers = 0
        self._idle = False  # the publisher waits for items (a put wakes it)
        self._catalogs = _Catalogs()
        self._resources = RunResources()

    def put(self, saved: _Saved) -> None:
        """Queue ``saved``, announced in the caller's scope (RunScope)."""
        self._ensure_thread()
        item = (RunScope.of_caller(), saved)
        with self._state:
            self._items.append(item)
            if self._idle:  # not while it lingers: one wake-up per batch
                self._wake.notify()

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait until every queued result is told and every catalog published (or failed);
        False on timeout.

        The publisher stops lingering while a flush waits; flushes may overlap.
        """
        deadline = time.monotonic() + timeout
        with self._state:
            self._flushers += 1
            self._wake.notify()
            try:
                while self._items or self._in_flight or self._next_due is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._drained.wait(remaining)
            finally:
                self._flushers -= 1
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._thread = None
                self._start_afresh()
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
            batch, everything = self._take()
            try:
                _tell_all(batch, self._catalogs, self._resources)
                self._catalogs.publish(everything)
            except Exception as error:  # a bug here must not stop the thread or a flush
                logger.warning("labox: could not publish results: %s", error)
            finally:
                del batch  # no value outlives its announcement while the queue is idle
                with self._state:
                    self._in_flight = 0
                    self._next_due = self._catalogs.next_due()
                    self._drained.notify_all()

    def _take(self) -> tuple[list[_Item], bool]:
        """The next batch (maybe empty: a catalog is due), and whether a flush waits."""
        with self._state:
            while True:
                if self._items:
                    deadline = time.monotonic() + self._linger
                    while not self._flushers and (left := deadline - time.monotonic()) > 0:
                        self._wake.wait(left)  # the next tasks' results join this batch
                    batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
                    self._in_flight = len(batch)
                    return batch, self._flushers > 0
                if self._next_due is not None and (
                    self._flushers or self._next_due <= time.monotonic()
                ):
                    return [], self._flushers > 0
                self._idle = True
                try:
                    wait = None if self._next_due is None else self._next_due - time.monotonic()
                    self._wake.wait(wait)
                finally:
                    self._idle = False


def _tell_all(batch: list[_Item], catalogs: _Catalogs, resources: RunResources) -> None:
    """Tell every saved result of ``batch``; add those asking for artifacts to ``catalogs``.

    Each event is built in its run's scope; the batch's events are then sent together from
    this thread's own context (see labox_prefect.events).
    """
    workers = Workers()
    outgoing: list[Outgoing] = []
    for scope, saved in batch:
        told = scope.context.run(_tell, saved, scope.task_run, resources, workers)
        if told is None:
            continue
        summary, event = told
        if event is not None:
            outgoing.append(event)
        if saved.artifacts:
            catalogs.add(scope.context, summary)
    send_all(outgoing)


def _tell(
    saved: _Saved, task_run: TaskRun | None, resources: RunResources, workers: Workers
) -> tuple[ResultSummary, Outgoing | None] | None:
    """Summarize ``saved`` and build its event; None (logged) when it cannot be summarized."""
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
    return summary, result_saved(summary, task_run, resources, workers)


def _by_api(runs: list[_Run]) -> list[tuple[contextvars.Context, list[_Run]]]:
    """Runs whose rows were queued from one API URL share one client (and the first's context)."""
    groups: dict[str | None, tuple[contextvars.Context, list[_Run]]] = {}
    for run in runs:
        assert run.context is not None  # due runs have waiting rows
        url = run.context.run(_api_url)
        groups.setdefault(url, (run.context, []))[1].append(run)
    return list(groups.values())


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _publish_catalogs(runs: list[_Run]) -> None:
    try:
        # A client of our own: the run's is closed when the run ends
        # (before a backlog is published).
        with own_sync_client() as client:
            for run in runs:
                try:
                    if run.artifact_id is None:
                        created = client.create_artifact(artifact=run.catalog.create_request())
                        run.artifact_id = created.id
                    else:
                        # The PATCH alone: Prefect's update_artifact would also emit
                        # prefect.artifact.updated carrying the whole table (up to ~400 KB,
                        # every few seconds while a busy flow runs) into the event history.
                        client.request(
                            "PATCH",
                            "/artifacts/{id}",
                            path_params={"id": run.artifact_id},
                            json=run.catalog.update_request().model_dump(
                                mode="json", exclude_unset=True
                            ),
                        )
                except Exception as error:
                    _warn(run, error)
    except Exception as error:
        for run in runs:
            _warn(run, error)


def _warn(run: _Run, error: BaseException) -> None:
    catalog = run.catalog
    where = (
        f"flow run {catalog.flow_run_id}"
        if catalog.flow_run_id is not None
        else f"task run {catalog.task_run_id}"
    )
    logger.warning("labox: could not publish the artifact %s of %s: %s", catalog.key, where, error)


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
