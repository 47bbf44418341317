"""Prefect API clients of labox_prefect's own, made without loading a CA bundle for an API
spoken over plain HTTP.

The publisher's thread (labox_prefect.publication, labox_prefect.events) calls Prefect's API
through clients of its own: ``get_client()`` would hand back the run's client from a copied
context, which Prefect closes when the run ends; any ``httpx_settings`` make it build a new
one. Prefect's client makes a TLS context for every client it builds, unless it is given
one (``PrefectClient.__init__``): ``ssl.create_default_context`` loading the whole CA bundle,
about 16 ms of CPU holding the GIL, the publisher's largest cost per flow run.

For an ``http://`` API (a local server, Prefect's ephemeral one included) no TLS connection
is ever made, so the client gets a context that trusts no certificate at all
(``ssl.SSLContext(PROTOCOL_TLS_CLIENT)``: hostname checked, certificates required, none
loaded): free to make, and were it ever used it would refuse every server rather than trust
one. For any other API, Prefect makes the context by its own rule, as for its own clients.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
from prefect.settings import get_current_settings


def own_client() -> PrefectClient:
    """A new async client for the current settings' API; enter it with ``async with``."""
    return get_client(httpx_settings=_httpx_settings(), sync_client=False)


def own_sync_client() -> SyncPrefectClient:
    """A new sync client for the current settings' API; enter it with ``with``."""
    return get_client(httpx_settings=_httpx_settings(), sync_client=True)


def _httpx_settings() -> dict[str, Any]:
    """A context that trusts nothing for a plain-HTTP API (or the ephemeral one); else none,
    so that Prefect's client makes its own."""
    url = get_current_settings().api.url
    if url is None or urlsplit(url).scheme == "http":
        return {"verify": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)}
    return {}


__all__ = ["own_client", "own_sync_client"]
