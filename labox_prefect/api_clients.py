"""Prefect API clients of labox_prefect's own, all sharing one TLS context.

The publisher's thread (labox_prefect.publication, labox_prefect.events) calls Prefect's API
through clients of its own: ``get_client()`` would hand back the run's client from a copied
context, which Prefect closes when the run ends. Any ``httpx_settings`` other than the
context client's (None) make ``get_client`` build a new client; here they carry the TLS
context. Without one, Prefect's client makes a TLS context for every client
(``ssl.create_default_context`` loading the whole CA bundle: about 16 ms of CPU, holding the
GIL, even for an ``http://`` API), which was the publisher's largest cost per flow run.

The context is made by Prefect's own rule (``PrefectClient.__init__``): certificates are not
checked when ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY`` is set, otherwise they are verified
against ``PREFECT_API_SSL_CERT_FILE``, or certifi's bundle when that is unset. A context is
made again when those settings change or the file does (its size or modification time).
httpcore sets the ALPN protocols on the context before each connection, by the client's
HTTP/2 setting (``PREFECT_API_ENABLE_HTTP2``): clients that differ in it do not share one.
tests/integration/test_api_clients.py checks that it is the context Prefect makes.
"""

from __future__ import annotations

import functools
import os
import ssl

import certifi
from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
from prefect.settings import get_current_settings

CONTEXTS_KEPT = 4
"""TLS contexts kept (one per settings and certificate file, the latest used)."""


def own_client() -> PrefectClient:
    """A new async client for the current settings' API; enter it with ``async with``."""
    return get_client(httpx_settings={"verify": tls_context()}, sync_client=False)


def own_sync_client() -> SyncPrefectClient:
    """A new sync client for the current settings' API; enter it with ``with``."""
    return get_client(httpx_settings={"verify": tls_context()}, sync_client=True)


def tls_context() -> ssl.SSLContext:
    """The TLS context Prefect's client makes for the current settings, made once for them.

    Raises what ``ssl.create_default_context`` raises for a certificate file it cannot load
    (OSError, ssl.SSLError), as Prefect's client would.
    """
    api = get_current_settings().api
    if api.tls_insecure_skip_verify:
        return _context(None, None, api.enable_http2)
    cafile = api.ssl_cert_file or certifi.where()
    return _context(cafile, _stamp(cafile), api.enable_http2)


def _stamp(path: str) -> tuple[int, int] | None:
    """The file's size and modification time (None: it cannot be read; ssl says why)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=CONTEXTS_KEPT)
def _context(cafile: str | None, stamp: tuple[int, int] | None, http2: bool) -> ssl.SSLContext:
    """A verifying context for ``cafile`` (``stamp`` tells its versions apart), or with no
    ``cafile`` one that checks nothing; one per ``http2`` setting of the clients using it."""
    if cafile is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


__all__ = ["own_client", "own_sync_client", "tls_context"]
