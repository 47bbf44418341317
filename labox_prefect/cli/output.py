"""What every command shares: the consoles, option parsing, and how errors are reported.

Expected failures end the command with one clear line on stderr, never a traceback: exit
code 2 for what the user can fix in the command line or its environment (bad input, a
result's class not imported: LABOX_REGISTRY_MODULES), 1 for the rest (a database or storage
that cannot be reached, a damaged record).
Database URLs are only ever shown with their password masked.

Every command reads the target tasks save to (labox_prefect.target): ``--block NAME``, else
the saved ``default`` block when one exists (on a configured Prefect API), else the LABOX_*
environment. This module is imported to build the command line, so Prefect and SQLAlchemy
are imported by the functions that need them, when a command runs.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from labox_prefect import preview
from labox_prefect.registry_modules import NOT_FOUND_FIX, first_not_found

if TYPE_CHECKING:
    from labox_prefect.errors import ResultClassNotRegisteredError
    from labox_prefect.target import Target

console = Console(highlight=False)
"""Results and reports (stdout)."""

err_console = Console(stderr=True, highlight=False)
"""Errors and progress bars (stderr), so stdout stays clean for --json and pipes."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def print_error(markup: str) -> None:
    """Print an error (Rich markup) on stderr: one line in a pipe or a log, and wrapped at
    words in a terminal (never cut inside a word by the terminal)."""
    err_console.print(markup, soft_wrap=not err_console.is_terminal)


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit with status 1."""
    print_error(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(1)


def usage_error(message: str) -> NoReturn:
    """Print a mistake in what the user typed as one error and exit with status 2."""
    print_error(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(2)


def masked(url: str) -> str:
    """A database URL fit to print: the password (if any) replaced by ***."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparsable URL>"


@dataclass
class _Invocation:
    """What this run of the command chose and resolved."""

    block: str | None = None
    """The block ``--block`` names (None: the default rule)."""
    creates_database: bool = False
    """Whether the command may create the database (``db upgrade``)."""
    target: Target | None = None
    """The target, once the command first needed it."""
    read_blocks: bool = False
    """Whether resolving it read Prefect's API (where a block read emits an event)."""


_invocation = _Invocation()


def select_block(name: str | None, *, creates_database: bool = False) -> None:
    """The block ``--block`` names (None: the default rule), for this invocation, and whether
    the command may create the database (``db upgrade``). Nothing is checked or imported
    here: the command line is parsed whole first, so a mistyped option is the first error."""
    global _invocation
    _invocation = _Invocation(name, creates_database)


def selected_target() -> Target:
    """The target of this invocation, resolved once, when the command first needs it.

    A missing block (or ``--block`` without a Prefect server to read it from: the ephemeral
    one is never started), a LABOX_* variable with a value its setting does not take, a
    database URL without its async driver, a storage URL of an unknown scheme, or (but for
    ``db upgrade``) a SQLite database file that does not exist, is a usage error (one line,
    exit code 2).
    """
    if _invocation.target is None:
        from sqlalchemy.exc import ArgumentError

        from labox_prefect.errors import InvalidSettingError, ResultTargetError
        from labox_prefect.settings import current_settings
        from labox_prefect.target import (
            api_configured,
            database_url_problem,
            resolve_target,
            storage_url_problem,
        )

        try:
            settings = current_settings()
        except InvalidSettingError as error:
            usage_error(str(error))
        name = _invocation.block
        if name is not None and not api_configured():
            usage_error(
                f"--block {name} reads a block saved on a Prefect server, and PREFECT_API_URL "
                f"is not set: export PREFECT_API_URL=http://HOST:4200/api (the server where "
                f"{name!r} is saved), or leave out --block to use the LABOX_* environment."
            )
        _invocation.read_blocks = api_configured()
        try:
            target = resolve_target(name)
            problem = database_url_problem(target.database_url) or storage_url_problem(
                target.storage_url
            )
        except ResultTargetError as error:
            raise typer.BadParameter(str(error), param_hint="--block") from None
        except ArgumentError:  # the URL cannot even be parsed
            problem = database_url_problem(settings.resolved_database_url())
        problem = problem or missing_module_problem(settings.registry_modules)
        if problem is not None:
            usage_error(problem)
        if not _invocation.creates_database:
            _require_database_file(target)
        _invocation.target = target
    return _invocation.target


def _require_database_file(target: Target) -> None:
    """Refuse a SQLite database file that does not exist (but the embedded default's, before
    the first save: ``results ls`` lists nothing and says where it looked, the others say so).

    Only ``db upgrade`` creates a database: every other command reads or deletes, and run
    on a mistyped path it would otherwise create folders and an empty database.
    """
    from labox_prefect.target import is_embedded_default

    path = missing_database_file(target)
    if path is not None and not is_embedded_default(target):
        usage_error(
            f"No Labox database at {path}: nothing was saved there yet, or "
            f"LABOX_DATABASE_URL / LABOX_HOME is mistyped. Read-only commands create nothing; "
            f"`labox-prefect db upgrade` creates an empty database."
        )


def missing_database_file(target: Target) -> Path | None:
    """The SQLite file ``target``'s database is, when that file does not exist; None for
    an existing file, an in-memory database or another database."""
    from sqlalchemy import make_url

    parsed = make_url(target.database_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database).expanduser()
    return None if path.is_file() else path


def missing_module_problem(modules: Iterable[str]) -> str | None:
    """The first registry module Python cannot find, as a sentence naming the fix."""
    name = first_not_found(modules)
    if name is None:
        return None
    return (
        f"LABOX_REGISTRY_MODULES names the module {name!r}, which Python cannot find: "
        f"{NOT_FOUND_FIX}, or remove it from LABOX_REGISTRY_MODULES."
    )


def class_missing_fix(error: ResultClassNotRegisteredError) -> str:
    """What a shell user does when a result's class is not imported: the command's way."""
    what = f"Result {error.manifest_id} needs the class {error.class_name}"
    if error.module == "__main__":
        return (
            f"{what}, saved from a script Python could not name, so no command can load it: "
            f"move the class to a module and save the result again."
        )
    if not error.module:
        return (
            f"{what}, which this command has not imported: run it with "
            f"LABOX_REGISTRY_MODULES=MODULE, MODULE being the module that defines the class "
            f"(on PYTHONPATH)."
        )
    command = f"LABOX_REGISTRY_MODULES={error.module} labox-prefect ..."
    if first_not_found([error.module]) is None:
        return (
            f"{what} of module {error.module}, which this command has not imported: run it as "
            f"{command}"
        )
    folder = _folder_holding(error.module)
    if folder is not None:
        return (
            f"{what} of module {error.module}, which this command has not imported and Python "
            f"cannot find from here: run it as PYTHONPATH={shlex.quote(folder)} {command}"
        )
    return (
        f"{what} of module {error.module}, which this command has not imported and Python "
        f"cannot find: {NOT_FOUND_FIX}, then run it as {command} (e.g. PYTHONPATH=FOLDER "
        f"{command})."
    )


def _folder_holding(module: str) -> str | None:
    """The folder holding ``module``'s top package or file, as typed from the current folder
    (``.`` or one of its subfolders), when exactly one of them holds it; else None."""
    top = module.partition(".")[0]
    here = Path.cwd()
    try:
        folders = [here, *(p for p in here.iterdir() if p.is_dir() and not p.name.startswith("."))]
        found = [
            folder
            for folder in folders
            if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file()
        ]
    except OSError:
        return None
    if len(found) != 1:
        return None
    return "." if found[0] == here else found[0].name


def database_label() -> str:
    """The database of this invocation (once resolved; else not known yet), masked."""
    target = _invocation.target
    return "(not resolved yet)" if target is None else target.database_label


def deliver_prefect_events(timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` seconds) until Prefect's events worker has sent what it was
    given, when this invocation read a block from Prefect's API.

    Reading a block emits Prefect's ``prefect.block.<type>.loaded`` event; were it still
    queued when the command exits, Prefect's worker would print "Still processing items"
    while it sends it. The wait runs in a daemon thread, so an unreachable server delays
    the exit by ``timeout`` at most.
    """
    if not _invocation.read_blocks:
        return
    from prefect.events.worker import EventsWorker

    waiting = threading.Thread(target=EventsWorker.instance().wait_until_empty, daemon=True)
    waiting.start()
    waiting.join(timeout)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line: exit code 2 for a class not imported
    (the shell fix), a registry module whose import raises and a database without Labox
    tables, 1 for the others."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from labox_prefect.core import LaboxError
    from labox_prefect.errors import (
        DatabaseNotInitializedError,
        RegistryModuleImportError,
        ResultClassNotRegisteredError,
    )

    try:
        yield
    except typer.Exit:
        raise
    except ResultClassNotRegisteredError as error:
        usage_error(class_missing_fix(error))
    except (DatabaseNotInitializedError, RegistryModuleImportError) as error:
        usage_error(str(error))  # no Labox tables; LABOX_REGISTRY_MODULES names a broken module
    except DBAPIError as error:  # the server answered: the message says what it refused
        fail(
            f"The database {database_label()} answered: {_first_line(str(error.orig))}. "
            f"Check the database URL (LABOX_DATABASE_URL or the block's database_url)."
        )
    except SQLAlchemyError as error:
        fail(f"Database {database_label()}: {type(error).__name__}: {_first_line(str(error))}")
    except (ConnectionError, TimeoutError, socket.gaierror) as error:
        if isinstance(error, LaboxError):  # the core's own, naming a storage or database
            fail(_with_notes(error))
        code = error.errno or 0  # gaierror's are negative: its strerror says more
        reason = os.strerror(code) if code > 0 else error.strerror or type(error).__name__
        fail(
            f"Cannot connect to the database {database_label()}: {reason}. Check that its "
            f"server runs and the URL's host and port (LABOX_DATABASE_URL or the block's "
            f"database_url)."
        )
    except OSError as error:
        fail(
            f"{type(error).__name__}: {error}. Check that the database ({database_label()}) and "
            f"the storage (LABOX_STORAGE_URL or the block's storage_url) are reachable."
        )
    except (LaboxError, ValueError, TypeError, LookupError) as error:
        fail(_with_notes(error))


def count_option(ctx: typer.Context, param: typer.CallbackParam, value: int | None) -> int | None:
    """A count option (``--limit N``, ``--keep-last N``): 0 or more, else a usage error."""
    if value is not None and value < 0:
        name = param.opts[0] if param.opts else "N"
        raise typer.BadParameter(f"{value} is below 0: give {name} 0 or more.", param_hint=name)
    return value


def checked(parse: Callable[[Any], object]) -> Callable[..., Any]:
    """An option callback: ``parse`` checks the value as the command line is read, so a bad
    one is a usage error (naming the option) before the command imports its work. The value
    is passed on as given; the command parses it again (the parsers here are cheap)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        try:
            parse(value)
        except typer.BadParameter as error:
            hint = param.opts[0] if param.opts else None
            raise typer.BadParameter(error.message, param_hint=hint) from None
        return value

    return check


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` options as a dict (the value may itself contain ``=``)."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"{pair!r} is not key=value (e.g. --tag project=fold).", param_hint="--tag"
            )
        tags[key] = value
    return tags


def parse_since(text: str) -> datetime | timedelta:
    """``2h``, ``30m``, ``3d``, ``1w``, ``1d12h`` (that long ago), or an ISO date or time.

    An ISO time without an offset is read as local time, as a person typing it means.
    """
    compact = text.strip().lower().replace(" ", "")
    if compact and _DURATION.sub("", compact) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(compact))
        try:
            duration = timedelta(seconds=seconds)
            datetime.now(UTC) - duration
        except OverflowError:
            raise typer.BadParameter(
                f"{text!r} reaches back before the year 1: give a shorter duration (such as "
                f"52w) or an ISO date (2024-05-01).",
                param_hint="--since",
            ) from None
        return duration
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30m, 2h, 3d, 1w) nor an ISO date or time "
            f"(2024-05-01, 2024-05-01T14:30, 2024-05-01T14:30+00:00).",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def parse_duration(text: str, option: str = "--grace") -> timedelta:
    """``30m``, ``1h``, ``2d``, ``0s``: a span, not a date."""
    try:
        parsed = parse_since(text)
    except typer.BadParameter:
        parsed = None
    if not isinstance(parsed, timedelta):
        raise typer.BadParameter(
            f"{text!r} is not a duration (0s, 30m, 1h, 2d).", param_hint=option
        )
    return parsed


def parse_deployment(text: str) -> tuple[str, str]:
    """``--deployment FLOW/DEPLOYMENT`` as (flow, deployment), as ``prefect deployment ls``
    names it."""
    flow, slash, name = text.partition("/")
    if not slash or not flow or not name:
        raise typer.BadParameter(
            f"{text!r} is not FLOW/DEPLOYMENT (e.g. --deployment etl/nightly, as "
            f"`prefect deployment ls` prints it).",
            param_hint="--deployment",
        )
    return flow, name


def human_size(size: int | None) -> str:
    """``2.3 MiB`` and the like; exact bytes below one KiB; ``-`` when unknown."""
    return "-" if size is None else preview.human_size(size)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


def _with_notes(error: BaseException) -> str:
    notes = getattr(error, "__notes__", None) or []
    return " ".join([str(error) or type(error).__name__, *notes])


__all__ = [
    "checked",
    "class_missing_fix",
    "console",
    "count_option",
    "database_label",
    "err_console",
    "fail",
    "human_size",
    "masked",
    "missing_database_file",
    "missing_module_problem",
    "parse_deployment",
    "parse_duration",
    "parse_since",
    "parse_tags",
    "print_error",
    "reported_errors",
    "select_block",
    "selected_target",
    "usage_error",
]
