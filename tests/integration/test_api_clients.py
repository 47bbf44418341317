"""The publisher's API clients: no CA bundle loaded for a plain-HTTP API, Prefect's own TLS
context for any other."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from labox_prefect import api_clients


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every TLS context made with ssl.create_default_context from now on."""
    calls: list[dict[str, Any]] = []
    create = ssl.create_default_context

    def recorded(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        calls.append(kwargs)
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", recorded)
    return calls


@pytest.mark.parametrize("url", ["http://127.0.0.1:4200/api", None])
def test_a_plain_http_api_loads_no_ca_bundle_and_trusts_no_certificate(
    url: str | None, made: list[dict[str, Any]]
) -> None:
    with temporary_settings({PREFECT_API_URL: url}):
        settings = api_clients._httpx_settings()
        api_clients.own_client(), api_clients.own_sync_client()

    assert made == []
    context = settings["verify"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs() == []


def test_any_other_api_gets_prefects_own_tls_context(made: list[dict[str, Any]]) -> None:
    with temporary_settings({PREFECT_API_URL: "https://api.example.invalid/api"}):
        assert api_clients._httpx_settings() == {}
        api_clients.own_client(), api_clients.own_sync_client()

    assert len(made) == 2  # one by Prefect's rule for each client, as for its own
