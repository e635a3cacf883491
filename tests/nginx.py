"""A real nginx with lua-nginx-module (Debian's), running the platform's Lua plugins the way Kong
does, in front of Python servers on 127.0.0.1 that report exactly what reached them.

Kong itself is not installable here (its packages come from Kong's own repositories), so Kong's
PDK is the thin layer over lua-nginx-module Kong implements (kong-plugins/spec/nginx_pdk.lua);
everything below it is the real nginx: header parsing and spellings (`underscores_in_headers on`,
as Kong's template sets it), clear/set, proxying, cosockets and ngx.semaphore.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.harness import ROOT
from tests.processes import free_port, stop, wait_for_port

PLUGINS = ROOT / "kong-plugins"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULES = Path("/usr/lib/nginx/modules")


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


def upstream_echo(_path: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
    return 200, headers


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

    def token_for(self, oidc: dict[str, Any], **claims: Any) -> str:
        """A token the oidc-jwt configuration `oidc` accepts, with `claims` changed."""
        now = int(time.time())
        values = {
            "iss": oidc["issuer"],
            "aud": oidc["audiences"][0],
            "sub": "user-42",
            "exp": now + 300,
            "iat": now - 5,
            "scope": " ".join(["openid", *oidc["required_scopes"]]),
            "groups": ["ml-engineers"],
        }
        values.update(claims)
        return self.token(values)


@dataclass(frozen=True)
class Location:
    """A location running plugins in order (each handler's access phase with its configuration)
    before proxying to `target` ("host:port", or "$target" for the ai-router's choice)."""

    path: str
    plugins: list[tuple[str, dict[str, Any]]]
    target: str


def _nginx_conf(prefix: Path, port: int, lua_root: Path, locations: list[Location], init: str) -> str:
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    configs = {f"{i}-{j}": config for i, loc in enumerate(locations) for j, (_p, config) in enumerate(loc.plugins)}
    blocks = []
    for i, loc in enumerate(locations):
        calls = "\n".join(
            f'        require("kong.plugins.{plugin}.handler"):access(CONFIGS["{i}-{j}"])'
            for j, (plugin, _config) in enumerate(loc.plugins)
        )
        blocks.append(
            f"""    location {loc.path} {{
      set $target "";
      access_by_lua_block {{
{calls}
      }}
      proxy_pass http://{loc.target};
    }}"""
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
    CONFIGS = require("cjson").decode([==[{json.dumps(configs)}]==])
{init}
  }}
  server {{
    listen 127.0.0.1:{port};
{chr(10).join(blocks)}
  }}
}}
"""


@contextmanager
def nginx(tmp_path: Path, locations: list[Location], init: str = "", tolerated: tuple[str, ...] = ()) -> Iterator[int]:
    """nginx running the locations on a loopback port; its error log must stay free of errors but
    the plugins' own and the `tolerated` ones."""
    if not (MODULES / "ngx_http_lua_module.so").exists() or shutil.which(NGINX) is None:
        pytest.fail("nginx with lua-nginx-module is not installed: scripts/setup installs it")
    lua_root = tmp_path / "lua"
    (lua_root / "kong" / "plugins").mkdir(parents=True)
    for plugin in PLUGINS.iterdir():
        if (plugin / "handler.lua").exists():
            (lua_root / "kong" / "plugins" / plugin.name).symlink_to(plugin)
    (lua_root / "api_platform").symlink_to(PLUGINS / "lib" / "api_platform")
    prefix = tmp_path / "nginx"
    for directory in ("logs", "tmp"):
        (prefix / directory).mkdir(parents=True)
    port = free_port()
    (prefix / "nginx.conf").write_text(_nginx_conf(prefix, port, lua_root, locations, init))
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process, "nginx")
        yield port
    finally:
        stop(process, signal.SIGQUIT)
    errors = (prefix / "logs" / "error.log").read_text()
    assert "[alert]" not in errors and "[crit]" not in errors, errors[-3000:]
    unexpected = [
        line
        for line in errors.splitlines()
        if "[error]" in line and "opa-authz:" not in line and not any(t in line for t in tolerated)
    ]
    assert not unexpected, "\n".join(unexpected[-10:])


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
