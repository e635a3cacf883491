"""Recover a stack after an interrupted `pulumi up` (a killed CI runner, a lost machine).

    python -m stacks.recover STACK            diagnose: locks, the checkpoint, pending operations
    python -m stacks.recover STACK --apply    and repair them, then refresh the state from the cluster

For the file:// and s3:// backends, read from $PULUMI_BACKEND_URL (or --backend), with plain, gzip
or zstd checkpoints. Run it from the repository's root with the stack's cluster credentials, as
`pulumi up` is run; a team's catalogue stack with `--project-dir catalogue`. An interrupted update
can leave three things behind, each repaired in turn:

1. a lock file: the next update refuses to start. Locks whose process is still alive on this
   machine are never removed (another update is running); a lock from another machine is removed
   only with --force, once you know that machine's update is gone. The plugins the engine started
   keep running too (each in a process group of its own), adopted by init: they are stopped.
2. a damaged checkpoint (empty or truncated JSON, or resources out of order): restored from the
   backend's own copies, newest first: `<stack>.json.bak`, then `.pulumi/backups/`, then the
   update history. The damaged file is kept beside it.
3. pending operations: objects the engine was creating, updating or deleting when it stopped.
   `pulumi refresh --clear-pending-creates` drops unconfirmed creates (the next `up` applies them
   again; server-side apply adopts an object that was in fact created) and reads every other
   object back from the cluster.

Then review `pulumi preview` and run `pulumi up`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import yaml
import zstandard

from stacks.loader import PROJECT

BOOKKEEPING = ".pulumi"
COMPRESSIONS = ("", ".gz", ".zst")  # PULUMI_DIY_BACKEND_GZIP / PULUMI_DIY_BACKEND_ZSTD


class Bucket(Protocol):
    def list(self, prefix: str) -> list[str]: ...
    def read(self, key: str) -> bytes | None: ...
    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


@dataclass
class FileBucket:
    root: Path

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".recovering")
        temporary.write_bytes(data)
        temporary.replace(path)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


@dataclass
class S3Bucket:
    client: Any
    bucket: str
    prefix: str = ""

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            found += [o["Key"].removeprefix(f"{self.prefix}/" if self.prefix else "") for o in page.get("Contents", [])]
        return sorted(found)

    def read(self, key: str) -> bytes | None:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_backend(url: str) -> Bucket:
    """The bucket of a DIY backend URL: file:///path, file://~/path or s3://bucket[/prefix]?region=..."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(os.path.expanduser((parsed.netloc + parsed.path) if parsed.netloc == "~" else parsed.path))
        return FileBucket(path)
    if parsed.scheme == "s3":
        import boto3  # noqa: PLC0415 - only for S3 backends

        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        session = boto3.session.Session(profile_name=query.get("profile"))
        client = session.client("s3", region_name=query.get("region"), endpoint_url=query.get("endpoint"))
        return S3Bucket(client, parsed.netloc, parsed.path.strip("/"))
    raise SystemExit(f"recover: backend {url!r} is not file:// or s3:// (the Pulumi Cloud recovers its own state)")


# ---- the checkpoint -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackPaths:
    """Where a DIY backend keeps one stack's files (pkg/backend/diy in Pulumi's source)."""

    project: str
    stack: str

    def checkpoint(self, bucket: Bucket) -> str:
        """The stack's checkpoint, as the engine finds it: `.json`, or `.json.gz` / `.json.zst` when
        the backend compresses (the engine keeps one of them)."""
        plain = f"{BOOKKEEPING}/stacks/{self.project}/{self.stack}.json"
        present = set(bucket.list(f"{BOOKKEEPING}/stacks/{self.project}/"))
        return next((plain + ext for ext in COMPRESSIONS if plain + ext in present), plain)

    @property
    def backups(self) -> str:
        return f"{BOOKKEEPING}/backups/{self.project}/{self.stack}/"

    @property
    def history(self) -> str:
        return f"{BOOKKEEPING}/history/{self.project}/{self.stack}/"

    @property
    def locks(self) -> str:
        return f"{BOOKKEEPING}/locks/organization/{self.project}/{self.stack}/"


def project_name(directory: Path) -> str:
    """The project `pulumi` uses in `directory`: the name in its Pulumi.yaml."""
    project_file = directory / "Pulumi.yaml"
    if not project_file.is_file():
        raise SystemExit(f"recover: no Pulumi.yaml in {directory.resolve()}: pass the stack's --project-dir")
    return str(yaml.safe_load(project_file.read_text())["name"])


def is_json(key: str) -> bool:
    """A JSON document, maybe compressed (the file backend keeps `.attrs` metadata beside each one)."""
    return key.endswith(tuple(".json" + ext for ext in COMPRESSIONS))


GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


def plain_json(data: bytes) -> bytes:
    """The JSON in a checkpoint file or any copy of it (`.bak` copies keep the compression but not
    the name's last extension, so the content says which it is)."""
    if data.startswith(GZIP_MAGIC):
        return gzip.decompress(data)
    if data.startswith(ZSTD_MAGIC):  # the engine's frames need not record their size: read them as a stream
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return data


def encoded_as(key: str, document: bytes) -> bytes:
    """A JSON document in the compression the checkpoint's file name says (what the engine expects)."""
    if key.endswith(".gz"):
        return gzip.compress(document)
    if key.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(document)
    return document


def decode(data: bytes) -> Any:
    return json.loads(plain_json(data))


def checkpoint_problem(data: bytes | None) -> str | None:
    """Why a checkpoint file cannot be loaded, or None when it is sound."""
    if data is None or not data.strip():
        return "missing" if data is None else "empty"
    try:
        document = decode(data)
    except (ValueError, OSError, EOFError, zstandard.ZstdError) as error:
        return f"not valid JSON ({error})"
    if not isinstance(document, dict) or "checkpoint" not in document:
        return "not a Pulumi checkpoint"
    return resources_problem((document["checkpoint"] or {}).get("latest") or {})


def resources_problem(latest: dict[str, Any]) -> str | None:
    """The engine's own integrity rule: a resource refers only to resources before it."""
    seen: set[str] = set()
    for resource in latest.get("resources") or []:
        urn = resource.get("urn", "")
        references = [resource.get("parent"), *(resource.get("dependencies") or [])]
        provider = resource.get("provider") or ""
        references.append(provider.rsplit("::", 1)[0] if provider else None)
        missing = [r for r in references if r and r not in seen]
        if missing:
            return f"{urn} refers to {missing[0]}, which is not before it"
        if urn in seen and not resource.get("delete"):
            return f"{urn} appears twice"
        seen.add(urn)
    return None


def pending_operations(data: bytes) -> list[tuple[str, str]]:
    latest = decode(data).get("checkpoint", {}).get("latest") or {}
    return [
        (op.get("type", "?"), op.get("resource", {}).get("urn", "?")) for op in latest.get("pending_operations") or []
    ]


def restore_candidates(bucket: Bucket, paths: StackPaths, key: str) -> Iterator[str]:
    """The backend's own copies of the checkpoint `key`, newest first."""
    yield key + ".bak"
    backups = [k for k in bucket.list(paths.backups) if is_json(k)]
    yield from sorted(backups, key=lambda k: int(Path(k).name.split(".")[1]), reverse=True)
    history = [k for k in bucket.list(paths.history) if is_json(k) and ".checkpoint." in k]
    yield from sorted(history, reverse=True)


# ---- locks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    key: str
    pid: int
    username: str
    hostname: str
    timestamp: str

    @property
    def alive(self) -> bool | None:
        """True or False for a process on this machine; None when it ran elsewhere."""
        if self.hostname != socket.gethostname():
            return None
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"pulumi" in cmdline

    def describe(self) -> str:
        state = {True: "its process is still running", False: "its process is gone", None: "on another machine"}
        return (
            f"{self.key}: pid {self.pid} of {self.username}@{self.hostname} at {self.timestamp} ({state[self.alive]})"
        )


def locks(bucket: Bucket, paths: StackPaths) -> list[Lock]:
    found = []
    for key in filter(is_json, bucket.list(paths.locks)):
        content = json.loads(bucket.read(key) or b"{}")
        found.append(
            Lock(
                key,
                int(content.get("pid", 0)),
                content.get("username", "?"),
                content.get("hostname", "?"),
                content.get("timestamp", "?"),
            )
        )
    return found


# ---- plugins left running -------------------------------------------------------------------------

PLUGIN_NAMES = (b"pulumi-resource-", b"pulumi-language-", b"pulumi-analyzer-")


@dataclass(frozen=True)
class Orphan:
    """A plugin process whose engine is gone: Pulumi starts each in its own process group, so
    killing the engine's group leaves them running, adopted by init."""

    pid: int
    command: str

    def describe(self) -> str:
        return f"orphaned plugin pid {self.pid}: {self.command}"

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(self.pid, 0)
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def orphaned_plugins(proc: Path = Path("/proc")) -> list[Orphan]:
    found = []
    for entry in proc.glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        program = Path(argv[0].decode(errors="replace")).name.encode()
        is_plugin = (
            program.startswith(PLUGIN_NAMES)
            or any(b"pulumi-language-python-exec" in a for a in argv[:2])  # the program: python <exec> ...
            or argv[1:4] == [b"-u", b"-m", b"pulumi.policy"]  # a policy pack, run by the language host
        )
        if is_plugin and parent == "1" and entry.name != str(os.getpid()):
            found.append(Orphan(int(entry.name), b" ".join(argv).decode(errors="replace").strip()[:160]))
    return sorted(found, key=lambda o: o.pid)


# ---- diagnosis and repair ----------------------------------------------------------------------------


@dataclass
class Diagnosis:
    stack: str
    key: str  # the checkpoint file
    locks: list[Lock] = field(default_factory=list)
    checkpoint_problem: str | None = None
    restore_from: str | None = None
    pending: list[tuple[str, str]] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.locks or self.checkpoint_problem or self.pending or self.orphans)

    def report(self) -> str:
        lines = [f"stack {self.stack}:"]
        lines += [f"  lock {lock.describe()}" for lock in self.locks] or ["  no lock"]
        if self.checkpoint_problem:
            source = self.restore_from or "nothing: no sound copy found"
            lines.append(f"  checkpoint {self.key} is {self.checkpoint_problem}; restore from {source}")
        else:
            lines.append("  checkpoint sound")
        lines += [f"  pending {kind}: {urn}" for kind, urn in self.pending] or ["  no pending operation"]
        lines += [f"  {orphan.describe()}" for orphan in self.orphans] or ["  no orphaned plugin on this machine"]
        return "\n".join(lines)


def diagnose(bucket: Bucket, stack: str, project: str = PROJECT, proc: Path = Path("/proc")) -> Diagnosis:
    paths = StackPaths(project, stack)
    key = paths.checkpoint(bucket)
    diagnosis = Diagnosis(stack, key, locks=locks(bucket, paths), orphans=orphaned_plugins(proc))
    data = bucket.read(key)
    diagnosis.checkpoint_problem = checkpoint_problem(data)
    if diagnosis.checkpoint_problem:
        for candidate in restore_candidates(bucket, paths, key):
            copy = bucket.read(candidate)
            if checkpoint_problem(copy) is None and copy is not None:
                diagnosis.restore_from, data = candidate, copy
                break
    if data is not None and checkpoint_problem(data) is None:
        diagnosis.pending = pending_operations(data)
    return diagnosis


class RecoveryRefusedError(Exception):
    """Repairing now could lose state: the message says why and what to do."""


def repair(bucket: Bucket, diagnosis: Diagnosis, force: bool = False) -> list[str]:
    """Restore the checkpoint and release the locks; returns what was done."""
    running = [lock for lock in diagnosis.locks if lock.alive]
    if running:
        raise RecoveryRefusedError(f"an update is still running: {running[0].describe()}; wait for it to end")
    elsewhere = [lock for lock in diagnosis.locks if lock.alive is None]
    if elsewhere and not force:
        raise RecoveryRefusedError(
            f"{elsewhere[0].describe()}: make sure that update is gone, then run again with --force"
        )
    done = []
    key = diagnosis.key
    if diagnosis.checkpoint_problem:
        if diagnosis.restore_from is None:
            raise RecoveryRefusedError(f"{key} is {diagnosis.checkpoint_problem} and the backend holds no sound copy")
        damaged = bucket.read(key)
        if damaged is not None:
            bucket.write(f"{key}.damaged-{int(time.time())}", damaged)
        restored = plain_json(bucket.read(diagnosis.restore_from) or b"")
        bucket.write(key, encoded_as(key, restored))
        done.append(f"restored {key} from {diagnosis.restore_from}")
    for lock in diagnosis.locks:
        bucket.delete(lock.key)
        bucket.delete(lock.key + ".attrs")
        done.append(f"released {lock.key}")
    for plugin in diagnosis.orphans:
        plugin.stop()
        done.append(f"stopped {plugin.describe()}")
    return done


def refresh(stack: str, project_dir: Path) -> int:
    """Read every object back from the cluster, dropping creates the engine never confirmed."""
    command = ["pulumi", "refresh", "--yes", "--non-interactive", "--clear-pending-creates", "--stack", stack]
    print("running:", " ".join(command), f"(in {project_dir})", flush=True)
    return subprocess.run(command, check=False, cwd=project_dir).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument(
        "--project-dir", type=Path, default=Path(), help="the stack's project: . (default) or catalogue"
    )
    parser.add_argument("--backend", default=os.environ.get("PULUMI_BACKEND_URL"), help="file:// or s3:// URL")
    parser.add_argument("--apply", action="store_true", help="repair, then refresh the state from the cluster")
    parser.add_argument("--force", action="store_true", help="also release locks taken on another machine")
    parser.add_argument("--no-refresh", action="store_true", help="repair the backend only")
    args = parser.parse_args(argv)
    if not args.backend:
        parser.error("no backend: set PULUMI_BACKEND_URL or pass --backend")
    bucket = open_backend(args.backend)
    diagnosis = diagnose(bucket, args.stack, project_name(args.project_dir))
    print(diagnosis.report())
    if not args.apply:
        return 0 if diagnosis.healthy else 1
    try:
        for line in repair(bucket, diagnosis, args.force):
            print(line)
    except RecoveryRefusedError as error:
        print(f"recover: refused: {error}", file=sys.stderr)
        return 2
    if not args.no_refresh and refresh(args.stack, args.project_dir) != 0:
        print("recover: pulumi refresh failed; fix what it reports and run it again", file=sys.stderr)
        return 1
    print(f"recovered: review `pulumi preview --stack {args.stack}`, then run `pulumi up --stack {args.stack}`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
