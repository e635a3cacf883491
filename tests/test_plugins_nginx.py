"""The platform's Lua plugins in a real nginx: lua-nginx-module from Debian's packages, with
`underscores_in_headers on` as Kong's nginx template sets it, in front of Python upstreams on
127.0.0.1 that report exactly what reached them.

Kong itself is not installable here (its packages come from Kong's own repositories), so Kong's
PDK is the thin layer over lua-nginx-module Kong implements (kong-plugins/spec/nginx_pdk.lua);
everything below it is the real nginx: header parsing and spellings, clear/set, proxying,
cosockets and ngx.semaphore. The oidc-jwt configurations are the ones the prod stack renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Recording
from tests.nginx import Location, Provider, Server, nginx, received, spellings, upstream_echo
from tests.processes import request
from tests.test_edge import plugins_of

SPOOFED = "spoofed-admin"


@dataclass
class Gateway:
    port: int
    provider: Provider
    provider_server: Server
    upstreams: dict[str, Server]
    configs: dict[str, dict[str, Any]]

    def request(self, path: str, headers: list[tuple[str, str]], body: bytes | None = None) -> tuple[int, Any]:
        return request(self.port, path, headers, body)

    def token(self, config: str, **claims: Any) -> str:
        return self.provider.token_for(self.configs[config], **claims)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {name: Server(upstream_echo).start() for name in ("oidc", "model", "fallback")}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path, servers: dict[str, Server], recordings: dict[str, Recording]) -> Iterator[Gateway]:
    configs = {
        "assistant": plugins_of(recordings["prod"], "assistant")["oidc-jwt"],  # hide_credentials off
        "hosted-llm": plugins_of(recordings["prod"], "hosted-llm")["oidc-jwt"],  # on: an external upstream
    }
    assert configs["hosted-llm"]["issuer"] == configs["assistant"]["issuer"]
    provider = Provider(configs["assistant"]["issuer"])
    provider_server = Server(provider.handle).start()
    ai_router = {
        "header": "x-model",
        "body_field": "model",
        "max_body_bytes": 1024,
        "routes": [{"model": "llama", "host": "127.0.0.1", "port": servers["model"].port}],
        "fallback": [{"host": "127.0.0.1", "port": servers["fallback"].port, "weight": 1}],
    }
    init = f"""
    local pdk = require "nginx_pdk"
    pdk.consumers["known-app"] = {{ id = "c-1", username = "known-app" }}
    local keys = require "kong.plugins.oidc-jwt.keys"
    keys.fetch = pdk.loopback_fetch("{provider.issuer}", {provider_server.port})
"""
    upstream = f"127.0.0.1:{servers['oidc'].port}"
    locations = [
        Location("/assistant", [("oidc-jwt", configs["assistant"])], upstream),
        Location("/hosted-llm", [("oidc-jwt", configs["hosted-llm"])], upstream),
        Location("/ai-router", [("ai-router", ai_router)], "$target"),
    ]
    try:
        with nginx(tmp_path, locations, init) as port:
            yield Gateway(port, provider, provider_server, servers, configs)
    finally:
        provider_server.stop()


OWNED = [
    "X-Authenticated-Subject",
    "X-Authenticated-Issuer",
    "X-Authenticated-Scopes",
    "X-Authenticated-Groups",
    "X-Consumer-ID",
    "X-Consumer-Username",
    "X-Consumer-Custom-ID",
    "X-Credential-Identifier",
    "X-Anonymous-Consumer",
]


def test_no_spoofed_identity_reaches_the_upstream_in_any_spelling(gateway: Gateway) -> None:
    token = gateway.token("assistant")
    spoofed = [(spelling, SPOOFED) for name in OWNED for spelling in spellings(name)]
    status, echo = gateway.request("/assistant", [("Authorization", f"Bearer {token}"), *spoofed])
    assert status == 200, echo
    for name in OWNED:
        assert SPOOFED not in received(echo, name), name
    assert received(echo, "X-Authenticated-Subject") == ["user-42"]
    assert received(echo, "X-Authenticated-Groups") == ["ml-engineers"]
    assert received(echo, "X-Credential-Identifier") == [gateway.configs["assistant"]["issuer"] + "|user-42"]
    # hide_credentials is off for a backend in the cluster: it gets the token as sent
    assert received(echo, "Authorization") == [f"Bearer {token}"]


def test_the_bearer_token_never_reaches_an_external_upstream(gateway: Gateway) -> None:
    token = gateway.token("hosted-llm")
    for spelling in ("Authorization", "authorization", "AUTHORIZATION", "AuThOrIzAtIoN"):
        status, echo = gateway.request("/hosted-llm", [(spelling, f"Bearer {token}")])
        assert status == 200, echo
        assert received(echo, "Authorization") == [], spelling
        assert token not in json.dumps(echo)


def test_refused_requests_never_reach_the_upstream(gateway: Gateway) -> None:
    before = len(gateway.upstreams["oidc"].requests)
    spoofed = [(spelling, SPOOFED) for spelling in spellings("X-Authenticated-Subject")]
    assert gateway.request("/assistant", spoofed)[0] == 401
    token = gateway.token("assistant")
    two = [("Authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
    assert gateway.request("/assistant", two)[0] == 400
    flood = [(f"X-Padding-{i}", "1") for i in range(1001)]
    assert gateway.request("/assistant", [("Authorization", f"Bearer {token}"), *flood, spoofed[0]])[0] == 400
    assert len(gateway.upstreams["oidc"].requests) == before


def test_fifty_concurrent_requests_on_a_cold_worker_fetch_the_keys_once(gateway: Gateway) -> None:
    gateway.provider.delay = 0.5  # the provider is slow: every request arrives during the fetch
    token = gateway.token("assistant")
    bearer = [("Authorization", f"Bearer {token}")]
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: gateway.request("/assistant", bearer)[0], range(50)))
    assert statuses == [200] * 50
    assert [path for path, _ in gateway.provider_server.requests] == ["/.well-known/openid-configuration", "/keys"]


def test_the_ai_router_picks_only_configured_upstreams_and_owns_its_header(gateway: Gateway) -> None:
    spoofed = [(spelling, "model:llama") for spelling in spellings("X-AI-Route")]
    status, echo = gateway.request("/ai-router", [("x-model", "llama"), *spoofed])
    assert status == 200 and received(echo, "X-AI-Route") == ["model:llama"]
    assert gateway.upstreams["model"].requests[-1][0] == "/ai-router"
    status, echo = gateway.request("/ai-router", [("x-model", "unknown\tmodel"), *spoofed])
    assert status == 200 and received(echo, "X-AI-Route") == ["fallback:unlisted"]
    # a header and a body naming different models, and the header twice: refused
    body = json.dumps({"model": "other"}).encode()
    assert gateway.request("/ai-router", [("x-model", "llama"), ("Content-Type", "application/json")], body)[0] == 400
    assert gateway.request("/ai-router", [("x-model", "llama"), ("X_Model", "other")])[0] == 400


def test_nginx_keeps_every_spelling_of_a_header_as_its_own_field(gateway: Gateway) -> None:
    """Why the plugins clear every spelling: nginx itself forwards them all (seen on this nginx)."""
    status, echo = gateway.request(
        "/ai-router", [("X_Client_Note", "a"), ("x-client_note", "b"), ("X-Client-Note", "c")]
    )
    assert status == 200
    assert sorted(received(echo, "X-Client-Note")) == ["a", "b", "c"]
