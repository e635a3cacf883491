"""Pre-flight check of the PostgreSQL backup bucket, run before `pulumi up` of a stack with backups.

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... python -m stacks.preflight Pulumi.prod.yaml

Backups that fail silently are worse than none: this checks, with the credentials the cluster
will use, that the bucket exists, keeps object versions, encrypts at rest, and accepts writes
(a probe object is written and removed). Exit status 0 when every check passes.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from components.models.postgres import BackupConfig
from stacks.loader import ConfigError, load_stack_file


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def check_bucket(s3: Any, bucket: str, prefix: str = "") -> list[Check]:
    """Run every check against `bucket` with the client's credentials; stops after a missing bucket."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = _error_code(error)
        denied = "exists but these credentials may not read it"
        reason = {"404": "does not exist", "NoSuchBucket": "does not exist", "403": denied, "AccessDenied": denied}
        return [Check("bucket", False, f"s3://{bucket} {reason.get(code, f'cannot be reached ({code})')}")]
    checks = [Check("bucket", True, f"s3://{bucket} exists and is reachable")]

    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    checks.append(
        Check(
            "versioning",
            status == "Enabled",
            "enabled"
            if status == "Enabled"
            else f"is {status or 'off'}: enable it so WAL and base backups survive accidental overwrites and deletes",
        )
    )

    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algorithms = sorted({r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules})
        checks.append(Check("encryption", bool(algorithms), f"default encryption {', '.join(algorithms)}"))
    except ClientError as error:
        if _error_code(error) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        checks.append(Check("encryption", False, "no default encryption: configure SSE-S3 or SSE-KMS"))

    key = f"{prefix.strip('/') + '/' if prefix.strip('/') else ''}.preflight-{uuid.uuid4().hex}"
    try:
        put = s3.put_object(Bucket=bucket, Key=key, Body=b"api-platform backup pre-flight probe")
        s3.delete_object(Bucket=bucket, Key=key, **({"VersionId": put["VersionId"]} if put.get("VersionId") else {}))
        checks.append(Check("write", True, f"the credentials can write and delete under s3://{bucket}/{prefix}"))
    except ClientError as error:
        checks.append(
            Check("write", False, f"the credentials cannot write to s3://{bucket}/{prefix} ({_error_code(error)})")
        )
    return checks


def check_backup(backup: BackupConfig, s3: Any | None = None) -> list[Check]:
    if not backup.enabled:
        return []
    client = s3 or boto3.client("s3", endpoint_url=backup.endpoint_url, region_name=backup.region)
    prefix = backup.destination_path.removeprefix("s3://").partition("/")[2]
    return check_bucket(client, backup.bucket, prefix)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stacks.preflight Pulumi.<stack>.yaml", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        config = load_stack_file(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    if not config.postgres.backup.enabled:
        print(f"{path.name}: backups are disabled; nothing to check")
        return 0
    try:
        checks = check_backup(config.postgres.backup)
    except (BotoCoreError, ClientError) as error:
        print(f"{path.name}: cannot check the backup bucket: {error}", file=sys.stderr)
        return 1
    print(*checks, sep="\n")
    failed = [c for c in checks if not c.ok]
    print(f"{path.name}: {'backup bucket ready' if not failed else f'{len(failed)} check(s) failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
