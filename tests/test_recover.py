"""Recovery of an interrupted update, on a file backend and on S3 (moto): what an interrupted `up`
leaves (a lock, a damaged checkpoint, pending operations) is found and repaired; nothing that could
still be in use is touched. The real engine kills and recovers an update in e2e/run.sh."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import zstandard
from moto import mock_aws

from stacks import recover
from stacks.recover import Bucket, FileBucket, RecoveryRefusedError
from tests.harness import ROOT

STACK = "prod"
URN = "urn:pulumi:prod::api-platform::"
PROVIDER = f"{URN}pulumi:providers:kubernetes::kubernetes"


def checkpoint(resources: list[dict[str, Any]], pending: list[dict[str, Any]] | None = None) -> bytes:
    latest = {"manifest": {}, "resources": resources, "pending_operations": pending or []}
    return json.dumps({"version": 3, "checkpoint": {"stack": STACK, "latest": latest}}).encode()


STACK_RESOURCE = {"urn": f"{URN}pulumi:pulumi:Stack::api-platform-prod", "type": "pulumi:pulumi:Stack"}
PROVIDER_RESOURCE = {"urn": PROVIDER, "type": "pulumi:providers:kubernetes", "parent": STACK_RESOURCE["urn"]}
NAMESPACE = {
    "urn": f"{URN}kubernetes:core/v1:Namespace::platform-databases",
    "parent": STACK_RESOURCE["urn"],
    "provider": f"{PROVIDER}::04da6b54",
}
SOUND = checkpoint([STACK_RESOURCE, PROVIDER_RESOURCE, NAMESPACE])
KEY = f".pulumi/stacks/api-platform/{STACK}.json"
LOCKS = f".pulumi/locks/organization/api-platform/{STACK}/"


def lock(pid: int, hostname: str | None = None) -> bytes:
    host = hostname or socket.gethostname()
    return json.dumps({"pid": pid, "username": "ci", "hostname": host, "timestamp": "2026-11-27T10:00:00Z"}).encode()


def dead_pid() -> int:
    pid = 4_000_000  # above the default pid_max: never a live process
    assert not Path(f"/proc/{pid}").exists()
    return pid


FIND_ORPHANS = recover.orphaned_plugins


@pytest.fixture(autouse=True)
def no_plugins_of_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins a real engine left on this machine are not these tests' business: never stop them."""
    monkeypatch.setattr(recover, "orphaned_plugins", lambda proc=None: [])


def fake_process(proc: Path, pid: int, argv: list[str], parent: int) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / str(pid) / "stat").write_text(f"{pid} ({Path(argv[0]).name}) S {parent} {pid} {pid} 0\n")


def test_only_plugins_whose_engine_is_gone_are_orphans(tmp_path: Path) -> None:
    fake_process(tmp_path, 101, ["/home/ci/.pulumi/plugins/pulumi-resource-kubernetes", "--port"], parent=1)
    fake_process(tmp_path, 102, ["/usr/bin/pulumi-language-python", "localhost:1"], parent=1)
    fake_process(tmp_path, 103, ["/venv/bin/python", "/x/pulumi-language-python-exec", "--engine"], parent=1)
    fake_process(tmp_path, 106, ["/venv/bin/python", "-u", "-m", "pulumi.policy", "localhost:1", "policy"], parent=1)
    fake_process(tmp_path, 104, ["pulumi-resource-random"], parent=99)  # its engine still runs
    fake_process(tmp_path, 105, ["/usr/bin/sleep", "30"], parent=1)  # not a plugin
    assert [o.pid for o in FIND_ORPHANS(tmp_path)] == [101, 102, 103, 106]


@pytest.fixture
def file_bucket(tmp_path: Path) -> FileBucket:
    return FileBucket(tmp_path)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="state")
        yield recover.open_backend("s3://state/platform?region=us-east-1")


@pytest.fixture(params=["file", "s3"])
def bucket(request: pytest.FixtureRequest) -> Bucket:
    return request.getfixturevalue(f"{request.param}_bucket")  # type: ignore[no-any-return]


def test_a_sound_stack_needs_nothing(bucket: Bucket) -> None:
    bucket.write(KEY, SOUND)
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.healthy and recover.repair(bucket, diagnosis) == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda: b"", "empty"),
        (lambda: SOUND[: len(SOUND) // 2], "not valid JSON"),
        (lambda: checkpoint([NAMESPACE, STACK_RESOURCE, PROVIDER_RESOURCE]), "which is not before it"),
    ],
    ids=["empty", "truncated", "out of order"],
)
def test_a_damaged_checkpoint_is_restored_from_the_newest_sound_copy(
    bucket: Bucket, damage: Callable[[], bytes], problem: str
) -> None:
    older = checkpoint([STACK_RESOURCE])
    bucket.write(KEY, damage())
    bucket.write(KEY + ".bak", b"")  # the copy of the interrupted write: damaged too
    bucket.write(f".pulumi/backups/api-platform/{STACK}/{STACK}.1700000000000000000.json", older)
    bucket.write(f".pulumi/backups/api-platform/{STACK}/{STACK}.1800000000000000000.json", SOUND)
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.checkpoint_problem is not None and problem in diagnosis.checkpoint_problem
    assert diagnosis.restore_from == f".pulumi/backups/api-platform/{STACK}/{STACK}.1800000000000000000.json"
    done = recover.repair(bucket, diagnosis)
    assert done == [f"restored {KEY} from {diagnosis.restore_from}"]
    assert bucket.read(KEY) == SOUND
    assert any(".damaged-" in k for k in bucket.list(".pulumi/stacks/"))  # kept for inspection
    assert recover.diagnose(bucket, STACK).healthy


def test_history_is_the_last_resort(bucket: Bucket) -> None:
    bucket.write(KEY, b"{")
    bucket.write(f".pulumi/history/api-platform/{STACK}/{STACK}-1800000000.checkpoint.json", SOUND)
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.restore_from == f".pulumi/history/api-platform/{STACK}/{STACK}-1800000000.checkpoint.json"


def test_no_sound_copy_refuses_rather_than_guess(bucket: Bucket) -> None:
    bucket.write(KEY, b"")
    with pytest.raises(RecoveryRefusedError, match="the backend holds no sound copy"):
        recover.repair(bucket, recover.diagnose(bucket, STACK))
    assert bucket.read(KEY) == b""


def test_a_stale_lock_is_released(bucket: Bucket) -> None:
    bucket.write(KEY, SOUND)
    bucket.write(LOCKS + "abc.json", lock(dead_pid()))
    diagnosis = recover.diagnose(bucket, STACK)
    assert [lk.alive for lk in diagnosis.locks] == [False]
    assert "its process is gone" in diagnosis.report()
    assert recover.repair(bucket, diagnosis) == [f"released {LOCKS}abc.json"]
    assert bucket.list(LOCKS) == []


def test_a_running_update_is_never_unlocked(bucket: Bucket, tmp_path: Path) -> None:
    # A live process of this machine with `pulumi` in its command line: one started for the test.
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    running = subprocess.Popen([str(fake)])
    for _ in range(100):  # until it has exec'd: before that its command line is the parent's
        if b"pulumi" in Path(f"/proc/{running.pid}/cmdline").read_bytes():
            break
        time.sleep(0.01)
    try:
        bucket.write(KEY, SOUND)
        bucket.write(LOCKS + "live.json", lock(running.pid))
        with pytest.raises(RecoveryRefusedError, match="an update is still running"):
            recover.repair(bucket, recover.diagnose(bucket, STACK))
        assert bucket.list(LOCKS) == [LOCKS + "live.json"]
    finally:
        running.kill()
        running.wait()


def test_a_lock_from_another_machine_needs_force(bucket: Bucket) -> None:
    bucket.write(KEY, SOUND)
    bucket.write(LOCKS + "ci.json", lock(42, hostname="ci-runner-7"))
    with pytest.raises(RecoveryRefusedError, match="run again with --force"):
        recover.repair(bucket, recover.diagnose(bucket, STACK))
    assert recover.repair(bucket, recover.diagnose(bucket, STACK), force=True) == [f"released {LOCKS}ci.json"]


def test_pending_operations_are_reported(bucket: Bucket) -> None:
    pending = [{"type": "creating", "resource": {"urn": f"{URN}kubernetes:apps/v1:Deployment::kong-deployment"}}]
    bucket.write(KEY, checkpoint([STACK_RESOURCE], pending))
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.pending == [("creating", f"{URN}kubernetes:apps/v1:Deployment::kong-deployment")]
    assert not diagnosis.healthy


def test_the_command_diagnoses_without_changing_anything(
    file_bucket: FileBucket, capsys: pytest.CaptureFixture[str]
) -> None:
    file_bucket.write(KEY, b"")
    file_bucket.write(KEY + ".bak", SOUND)
    file_bucket.write(LOCKS + "abc.json", lock(dead_pid()))
    assert recover.main([STACK, "--backend", f"file://{file_bucket.root}"]) == 1
    report = capsys.readouterr().out
    assert f"checkpoint {KEY} is empty; restore from {KEY}.bak" in report and "its process is gone" in report
    assert file_bucket.read(KEY) == b"" and file_bucket.list(LOCKS) != []
    assert recover.main([STACK, "--backend", f"file://{file_bucket.root}", "--apply", "--no-refresh"]) == 0
    assert file_bucket.read(KEY) == SOUND and file_bucket.list(LOCKS) == []


@pytest.mark.parametrize(
    ("extension", "compress"),
    [(".gz", gzip.compress), (".zst", zstandard.ZstdCompressor(write_content_size=False).compress)],
    ids=["gzip", "zstd"],
)
def test_compressed_checkpoints_are_found_read_and_restored_in_their_format(
    bucket: Bucket, extension: str, compress: Callable[[bytes], bytes]
) -> None:
    """PULUMI_DIY_BACKEND_GZIP/ZSTD: the engine writes `<stack>.json.gz|.zst` and `...zst.bak`; a
    restored checkpoint must stay where and how the engine reads it (no `.json` beside it)."""
    key = KEY + extension
    pending = [{"type": "creating", "resource": {"urn": f"{URN}kubernetes:core/v1:Secret::api-key"}}]
    bucket.write(key, compress(checkpoint([STACK_RESOURCE], pending)))
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.key == key and diagnosis.checkpoint_problem is None
    assert diagnosis.pending == [("creating", f"{URN}kubernetes:core/v1:Secret::api-key")]
    bucket.write(key, compress(SOUND)[:20])
    bucket.write(key + ".bak", compress(SOUND))
    diagnosis = recover.diagnose(bucket, STACK)
    assert diagnosis.checkpoint_problem is not None and diagnosis.restore_from == key + ".bak"
    assert recover.repair(bucket, diagnosis) == [f"restored {key} from {key}.bak"]
    assert recover.plain_json(bucket.read(key) or b"") == SOUND
    assert (bucket.read(key) or b"").startswith(compress(b"{}")[:2])  # still in the engine's format
    assert bucket.read(KEY) is None


def test_a_team_catalogue_stack_is_recovered_in_its_own_project(
    file_bucket: FileBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --project-dir catalogue, the project is api-catalogue: its locks and checkpoints, not the platform's."""
    locks = ".pulumi/locks/organization/api-catalogue/prod-research/"
    key = ".pulumi/stacks/api-catalogue/prod-research.json"
    file_bucket.write(key, b"")
    file_bucket.write(key + ".bak", SOUND)
    file_bucket.write(locks + "abc.json", lock(dead_pid()))
    file_bucket.write(KEY, SOUND)  # a platform stack of the same backend is left alone
    monkeypatch.chdir(ROOT)
    backend = f"file://{file_bucket.root}"
    assert (
        recover.main(["prod-research", "--project-dir", "catalogue", "--backend", backend, "--apply", "--no-refresh"])
        == 0
    )
    assert f"released {locks}abc.json" in capsys.readouterr().out
    assert file_bucket.read(key) == SOUND and file_bucket.list(locks) == []
    assert recover.main(["prod", "--backend", backend]) == 0  # the platform's, from the root
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"no Pulumi\.yaml in .*: pass the stack's --project-dir"):
        recover.main(["prod", "--backend", backend])
