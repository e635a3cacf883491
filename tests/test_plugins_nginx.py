"""The platform's Lua plugins in a real nginx: lua-nginx-module from Debian's packages, with
`underscores_in_headers on` as Kong's nginx template sets it, in front of Python upstreams on
127.0.0.1 that report exactly what reached them.

Kong itself is not installable here (its packages come from Kong's own repositories), so Kong's
PDK is the thin layer over lua-nginx-module Kong implements (kong-plugins/spec/nginx_pdk.lua);
everything below it is the real nginx: header parsing and spellings, clear/set, proxying,
cosockets and ngx.semaphore. The oidc-jwt configurations are the ones the prod stack renders.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.harness import ROOT, Recording
from tests.test_edge import plugins_of

PLUGINS = ROOT / "kong-plugins"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULES = Path("/usr/lib/nginx/modules")
SPOOFED = "spoofed-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Server:
    """A threaded HTTP server on loopback; `handle(path, headers)` -> (status, body)."""

    handle: Any
    port: int = field(default_factory=free_port)
    requests: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    def start(self) -> Server:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                headers = list(self.headers.items())  # raw names, every repetition
                server.requests.append((self.path, headers))
                status, body = server.handle(self.path, headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()


@dataclass
class Provider:
    """The identity provider: discovery and one ES256 key, each answer taking `delay` seconds."""

    issuer: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    delay: float = 0.0

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "kid": "ec-1",
            "use": "sig",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }

    def handle(self, path: str, _headers: list[tuple[str, str]]) -> tuple[int, Any]:
        time.sleep(self.delay)
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.issuer, "jwks_uri": self.issuer + "/keys"}
        if path == "/keys":
            return 200, {"keys": [self.jwk()]}
        return 404, {}

    def token(self, claims: dict[str, Any]) -> str:
        header = {"alg": "ES256", "kid": "ec-1", "typ": "JWT"}
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def upstream_echo(_path: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
    return 200, headers


@dataclass
class Gateway:
    port: int
    provider: Provider
    provider_server: Server
    upstreams: dict[str, Server]
    configs: dict[str, dict[str, Any]]

    def request(self, path: str, headers: list[tuple[str, str]], body: bytes | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.putrequest("POST" if body is not None else "GET", path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data.decode(errors="replace")

    def token(self, config: str, **claims: Any) -> str:
        conf = self.configs[config]
        now = int(time.time())
        values = {
            "iss": conf["issuer"],
            "aud": conf["audiences"][0],
            "sub": "user-42",
            "exp": now + 300,
            "iat": now - 5,
            "scope": " ".join(["openid", *conf["required_scopes"]]),
            "groups": ["ml-engineers"],
        }
        values.update(claims)
        return self.provider.token(values)


def nginx_conf(prefix: Path, port: int, lua_root: Path, locations: str, init: str) -> str:
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
load_module {MODULES}/ndk_http_module.so;
load_module {MODULES}/ngx_http_lua_module.so;
daemon off;
master_process off;  # one process as the test's user: no switch to nobody, one worker's cache
worker_processes 1;
error_log {prefix}/logs/error.log info;
pid {prefix}/logs/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  underscores_in_headers on;
{temp}
  lua_package_path "{lua_root}/?.lua;{PLUGINS}/spec/?.lua;/usr/share/lua/5.1/?.lua;;";
  lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";
  init_worker_by_lua_block {{
{init}
  }}
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {name: Server(upstream_echo).start() for name in ("oidc", "model", "fallback")}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path, servers: dict[str, Server], recordings: dict[str, Recording]) -> Iterator[Gateway]:
    if not (MODULES / "ngx_http_lua_module.so").exists() or shutil.which(NGINX) is None:
        pytest.fail("nginx with lua-nginx-module is not installed: scripts/setup installs it")
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
    lua_root = tmp_path / "lua"
    (lua_root / "kong" / "plugins").mkdir(parents=True)
    for plugin in ("oidc-jwt", "ai-router"):
        (lua_root / "kong" / "plugins" / plugin).symlink_to(PLUGINS / plugin)
    (lua_root / "api_platform").symlink_to(PLUGINS / "lib" / "api_platform")
    init = f"""
    local cjson = require "cjson"
    local pdk = require "nginx_pdk"
    pdk.consumers["known-app"] = {{ id = "c-1", username = "known-app" }}
    local keys = require "kong.plugins.oidc-jwt.keys"
    keys.fetch = pdk.loopback_fetch("{provider.issuer}", {provider_server.port})
    CONFIGS = cjson.decode([==[{json.dumps({**configs, "ai-router": ai_router})}]==])
"""
    locations = "\n".join(
        f"""    location /{name} {{
      set $target "";
      access_by_lua_block {{ require("kong.plugins.{plugin}.handler"):access(CONFIGS["{name}"]) }}
      proxy_pass http://{target};
    }}"""
        for name, plugin, target in (
            ("assistant", "oidc-jwt", f"127.0.0.1:{servers['oidc'].port}"),
            ("hosted-llm", "oidc-jwt", f"127.0.0.1:{servers['oidc'].port}"),
            ("ai-router", "ai-router", "$target"),
        )
    )
    prefix = tmp_path / "nginx"
    for directory in ("logs", "tmp"):
        (prefix / directory).mkdir(parents=True)
    port = free_port()
    (prefix / "nginx.conf").write_text(nginx_conf(prefix, port, lua_root, locations, init))
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "nginx exited")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Gateway(port, provider, provider_server, servers, configs)
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        provider_server.stop()
        errors = (prefix / "logs" / "error.log").read_text()
        assert "[error]" not in errors and "[alert]" not in errors, errors[-3000:]


def spellings(name: str) -> list[str]:
    """Every way an attacker spells a header: case and `-`/`_`, mixed."""
    dashed = name.split("-")
    return sorted(
        {
            name,
            name.lower(),
            name.upper(),
            name.replace("-", "_"),
            name.lower().replace("-", "_"),
            "_".join(dashed[:2]) + "-" + "-".join(dashed[2:]) if len(dashed) > 2 else name.swapcase(),
        }
    )


def received(echo: Any, name: str) -> list[str]:
    """The values the upstream received for `name` in any spelling."""
    wanted = name.lower().replace("_", "-")
    return [value for header, value in echo if header.lower().replace("_", "-") == wanted]


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
