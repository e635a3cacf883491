"""Processes the tests run on loopback (OPA, nginx, the OpenTelemetry Collector, Jaeger,
Prometheus): their binaries, ports, readiness, requests to them, waiting for an outcome, stopping."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any

from tests.harness import ROOT


@cache
def toolchain_binary(name: str) -> str:
    """A binary of the toolchain cache (helm, otelcol, jaeger), built on first use by e2e/toolchain.sh."""
    built = subprocess.run([ROOT / "e2e" / "toolchain.sh", name], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"e2e/toolchain.sh {name} failed:\n{built.stderr[-3000:]}")
    return str(Path(built.stdout.strip()) / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited: " + (process.stderr.read().decode() if process.stderr else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def until(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def request(port: int, path: str, headers: list[tuple[str, str]], body: bytes | None = None) -> tuple[int, Any]:
    """One request to a process on loopback, every header sent exactly as given (name spelling and
    repetition); the answer parsed as JSON when it is JSON, else as text."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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
