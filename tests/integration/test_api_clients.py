"""The publisher's API clients share one TLS context, the one Prefect's client would make."""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import (
    PREFECT_API_ENABLE_HTTP2,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_API_URL,
    temporary_settings,
)

from labox_prefect import api_clients

_API = "https://api.example.invalid/api"  # never called: clients are only made


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Any], ssl.SSLContext]]:
    """Every TLS context made from now on, with the arguments it was made with."""
    contexts: list[tuple[dict[str, Any], ssl.SSLContext]] = []
    create = ssl.create_default_context

    def recorded(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = create(*args, **kwargs)
        contexts.append((kwargs, context))
        return context

    monkeypatch.setattr(ssl, "create_default_context", recorded)
    return contexts


def _look(context: ssl.SSLContext) -> tuple[Any, ...]:
    return context.verify_mode, context.check_hostname, context.get_ca_certs()


@pytest.mark.parametrize("case", ["default bundle", "own certificate file", "insecure"])
def test_the_tls_context_is_prefects_and_made_once_for_the_settings(
    case: str, made: list[tuple[dict[str, Any], ssl.SSLContext]], tmp_path: Path
) -> None:
    cert_file = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), cert_file)
    settings: dict[Any, Any] = {
        PREFECT_API_URL: _API,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY: case == "insecure",
        PREFECT_API_SSL_CERT_FILE: str(cert_file) if case == "own certificate file" else None,
    }
    with temporary_settings(settings):
        get_client(httpx_settings={})  # Prefect's own client makes its context
        (prefects_arguments, prefects), *_ = made
        made.clear()
        first, second = api_clients.tls_context(), api_clients.tls_context()
        api_clients.own_client(), api_clients.own_sync_client()  # they make none either

    assert first is second
    assert len(made) <= 1  # none when an earlier test made it for the same settings
    assert [arguments for arguments, _ in made] in ([], [prefects_arguments])
    assert _look(first) == _look(prefects)


def test_a_changed_certificate_file_makes_a_new_context(
    made: list[tuple[dict[str, Any], ssl.SSLContext]], tmp_path: Path
) -> None:
    cert_file = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), cert_file)
    with temporary_settings({PREFECT_API_URL: _API, PREFECT_API_SSL_CERT_FILE: str(cert_file)}):
        before = api_clients.tls_context()
        os.utime(cert_file, ns=(1, 1))
        after = api_clients.tls_context()
    assert before is not after
    assert len(made) == 2


def test_a_missing_certificate_file_fails_as_for_prefects_client(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with temporary_settings({PREFECT_API_URL: _API, PREFECT_API_SSL_CERT_FILE: missing}):
        with pytest.raises(FileNotFoundError):
            get_client(httpx_settings={})
        with pytest.raises(FileNotFoundError):
            api_clients.tls_context()


def test_clients_that_differ_in_http2_share_no_context() -> None:
    """httpcore sets the context's ALPN protocols by the client's HTTP/2 setting."""
    contexts = []
    for http2 in (False, True):
        with temporary_settings({PREFECT_API_URL: _API, PREFECT_API_ENABLE_HTTP2: http2}):
            contexts.append(api_clients.tls_context())
    assert contexts[0] is not contexts[1]
