"""The backup pre-flight check, against moto's S3 (and IAM, for the write-permission check)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.models.postgres import BackupConfig
from stacks import preflight

BUCKET = "acme-api-platform-pg-backups"
REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def make_bucket(versioned: bool = True, encrypted: bool = True) -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    if encrypted:
        s3.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )
    return s3


def backup() -> BackupConfig:
    return BackupConfig(enabled=True, destination_path=f"s3://{BUCKET}/prod", region=REGION)


def by_name(checks: list[preflight.Check]) -> dict[str, preflight.Check]:
    return {c.name: c for c in checks}


def test_ready_bucket_passes_every_check_and_leaves_nothing_behind(aws: None) -> None:
    s3 = make_bucket()
    checks = by_name(preflight.check_backup(backup()))
    assert [c.ok for c in checks.values()] == [True, True, True, True]
    assert checks["encryption"].detail == "default encryption aws:kms"
    # The probe's versions are removed too, not hidden behind a delete marker.
    assert s3.list_object_versions(Bucket=BUCKET).get("Versions", []) == []
    assert s3.list_object_versions(Bucket=BUCKET).get("DeleteMarkers", []) == []


def test_missing_bucket_is_reported_and_stops(aws: None) -> None:
    checks = preflight.check_backup(backup())
    assert len(checks) == 1 and not checks[0].ok
    assert str(checks[0]) == f"[FAIL] bucket: s3://{BUCKET} does not exist"


def test_unversioned_bucket_fails_versioning(aws: None) -> None:
    make_bucket(versioned=False)
    check = by_name(preflight.check_backup(backup()))["versioning"]
    assert not check.ok and "is off: enable it" in check.detail


def test_unencrypted_bucket_fails_encryption(aws: None) -> None:
    make_bucket(encrypted=False)
    check = by_name(preflight.check_backup(backup()))["encryption"]
    assert not check.ok and check.detail == "no default encryption: configure SSE-S3 or SSE-KMS"


def test_read_only_credentials_fail_the_write_check(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bucket()
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                # s3:HeadBucket is how moto names HEAD on a bucket (AWS checks s3:ListBucket).
                "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:HeadBucket"], "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = boto3.client(
        "s3", region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    # moto enforces IAM only when asked to.
    monkeypatch.setattr("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT", 0)
    checks = by_name(preflight.check_backup(backup(), s3=reader))
    assert checks["bucket"].ok and checks["versioning"].ok
    assert not checks["write"].ok and "(AccessDenied)" in checks["write"].detail


def test_disabled_backups_check_nothing() -> None:
    assert preflight.check_backup(BackupConfig()) == []


def test_command_line(aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_bucket(encrypted=False)
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text((Path(preflight.__file__).parent.parent / "Pulumi.prod.yaml").read_text())
    assert preflight.main([str(stack)]) == 1
    out = capsys.readouterr().out
    assert "[ok] bucket: s3://acme-api-platform-pg-backups exists" in out
    assert "[FAIL] encryption" in out and "Pulumi.prod.yaml: 1 check(s) failed" in out
    dev = tmp_path / "Pulumi.dev.yaml"
    dev.write_text((Path(preflight.__file__).parent.parent / "Pulumi.dev.yaml").read_text())
    assert preflight.main([str(dev)]) == 0
    assert "backups are disabled" in capsys.readouterr().out
