"""A minimal Kubernetes REST client for the end-to-end test (standard library + PyYAML only).

    python e2e/kube.py wait-ready                  wait until the API server answers /readyz
    python e2e/kube.py install-crds DIR [DIR ...]  create every CRD found in DIR (recursively)
    python e2e/kube.py dump [--ours]               print every object (ours: labelled part-of api-platform)
    python e2e/kube.py webhook-probe NAMESPACE     which objects the API server sends to Kong's admission webhook
    python e2e/kube.py edit PATH JSON              change an object behind Pulumi's back (a JSON merge patch,
                                                   as `kubectl edit` or `kubectl scale` would)
    python e2e/kube.py get PATH [FIELD ...]        print an object, or the fields at the dotted FIELD paths
                                                   (a number picks a list item: spec.containers.1.name)
    python e2e/kube.py count SELECTOR              how many objects match a label selector
    python e2e/kube.py delete-namespaces NAME ...  delete namespaces (what a deliberate teardown leaves)

The connection comes from $E2E_CLUSTER_DIR (written by e2e/lib.sh): server URL, CA and an
admin client certificate.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

PART_OF = "app.kubernetes.io/part-of=api-platform"


# libyaml's loader when PyYAML has it: the CRDs are about 9 MB of YAML.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CrdLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that reads a bare `=` as a string (YAML 1.1 would make it the `value` tag)."""


def _value_as_string(loader: Any, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


CrdLoader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


TRANSIENT_STATUSES = frozenset({429, 503})


def _decode(payload: bytes) -> Any:
    """JSON when the server sent JSON (health endpoints answer plain text)."""
    try:
        return json.loads(payload or b"null")
    except json.JSONDecodeError:
        return payload.decode(errors="replace")


class Kube:
    def __init__(self, cluster_dir: Path):
        self.server = (cluster_dir / "server").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(cluster_dir / "ca.crt"))
        self.context.load_cert_chain(str(cluster_dir / "admin.crt"), str(cluster_dir / "admin.key"))

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        if not self.server.startswith("https://"):
            raise ValueError(f"refusing non-HTTPS API server URL {self.server!r}")
        req = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 - https only
        req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as response:  # noqa: S310 - https only
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read())

    def get(self, path: str, patience: float = 10) -> Any:
        """GET a path, waiting out the server's transient answers (429/503 while discovery settles)."""
        deadline = time.monotonic() + patience
        while True:
            status, body = self.request("GET", path)
            if status == 200:
                return body
            if status not in TRANSIENT_STATUSES or time.monotonic() > deadline:
                raise RuntimeError(f"GET {path}: HTTP {status}: {body}")
            time.sleep(0.5)

    def resources(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(list path, API resource) for every listable resource the server serves."""
        core = self.get("/api/v1")
        for res in core["resources"]:
            if "/" not in res["name"] and "list" in res["verbs"]:
                yield f"/api/v1/{res['name']}", res
        for group in self.get("/apis")["groups"]:
            version = group["preferredVersion"]["groupVersion"]
            for res in self.get(f"/apis/{version}")["resources"]:
                if "/" not in res["name"] and "list" in res["verbs"]:
                    yield f"/apis/{version}/{res['name']}", res

    def objects(self, label_selector: str | None = None) -> Iterator[dict[str, Any]]:
        query = f"?labelSelector={label_selector}" if label_selector else ""
        for path, res in self.resources():
            if res["name"] in {"events", "componentstatuses"} or res.get("group") == "events.k8s.io":
                continue
            status, body = self.request("GET", path + query)
            if status != 200:
                continue
            for item in body.get("items") or []:
                item.setdefault("kind", res["kind"])
                yield item


def wait_ready(kube: Kube, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = kube.request("GET", "/readyz")
            if status == 200:
                return
            last = body
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            last = error
        time.sleep(0.5)
    raise SystemExit(f"API server not ready after {timeout}s: {last}")


def crd_documents(directories: list[Path]) -> Iterator[dict[str, Any]]:
    for directory in directories:
        for path in sorted(directory.rglob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=CrdLoader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    yield doc


def install_crds(kube: Kube, directories: list[Path], timeout: float = 120) -> int:
    names = []
    for crd in crd_documents(directories):
        name = crd["metadata"]["name"]
        # A plain POST: several CRDs exceed the client-side-apply annotation limit.
        status, body = kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if status not in (201, 409):
            raise SystemExit(f"creating CRD {name}: HTTP {status}: {body}")
        names.append(name)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            # A CRD created a moment ago may carry `status: null` or `conditions: null`.
            status_block = crd.get("status") or {}
            conditions = {c["type"]: c["status"] for c in status_block.get("conditions") or []}
            if conditions.get("Established") == "True":
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        raise SystemExit(f"CRDs not established after {timeout}s: {sorted(pending)}")
    return len(names)


WEBHOOK_SUFFIX = ".validation.ingress-controller.konghq.com"


def webhook_probe(kube: Kube, namespace: str) -> list[str]:
    """Create objects that Kong's admission webhook must (and must not) review, while no controller
    answers it: with failurePolicy Fail, the API server refuses exactly those it sends there.

    Returns the problems: an object reviewed that should not be, or not reviewed that should be.
    """
    probe = {"app.kubernetes.io/part-of": "e2e-probe"}
    cases: list[tuple[str, str, dict[str, Any], str | None]] = [
        (
            f"/apis/configuration.konghq.com/v1/namespaces/{namespace}/kongplugins",
            "a KongPlugin",
            {
                "apiVersion": "configuration.konghq.com/v1",
                "kind": "KongPlugin",
                "metadata": {"name": "probe-plugin", "labels": probe},
                "plugin": "cors",
                "config": {},
            },
            "kong-configuration",
        ),
        (
            f"/api/v1/namespaces/{namespace}/secrets",
            "a Kong credential Secret",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "probe-credential", "labels": {**probe, "konghq.com/credential": "key-auth"}},
            },
            "secrets.credentials",
        ),
        (
            f"/api/v1/namespaces/{namespace}/secrets",
            "any other Secret",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe-secret", "labels": probe}},
            None,
        ),
        (
            f"/api/v1/namespaces/{namespace}/services",
            "a Service (reviewed, but never blocked)",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "probe-service", "labels": probe},
                "spec": {"ports": [{"port": 80}]},
            },
            None,
        ),
    ]
    problems = []
    for collection, what, body, webhook in cases:
        status, answer = kube.request("POST", collection, body)
        message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
        refused_by = next(
            (
                w
                for w in ("kong-configuration", "secrets.credentials", "routing")
                if f'"{w}{WEBHOOK_SUFFIX}"' in message
            ),
            None,
        )
        if status in (200, 201):
            kube.request("DELETE", f"{collection}/{body['metadata']['name']}")
        print(f"{what}: HTTP {status}" + (f", refused by {refused_by}" if refused_by else ""))
        if webhook and refused_by != webhook:
            problems.append(f"{what} was not refused by {webhook}{WEBHOOK_SUFFIX} (HTTP {status}: {message})")
        if webhook is None and status not in (200, 201):
            problems.append(f"{what} was refused (HTTP {status}: {message})")
    return problems


def _wait_ready(kube: Kube, _args: list[str]) -> int:
    wait_ready(kube)
    return 0


def _install_crds(kube: Kube, args: list[str]) -> int:
    print(f"installed {install_crds(kube, [Path(a) for a in args])} CRDs")
    return 0


def _dump(kube: Kube, args: list[str]) -> int:
    for obj in kube.objects(PART_OF if "--ours" in args else None):
        meta = obj["metadata"]
        print(f"{obj['kind']}\t{meta.get('namespace', '')}\t{meta['name']}")
    return 0


def _edit(kube: Kube, args: list[str]) -> int:
    path, patch = args
    status, answer = kube.request(
        "PATCH", f"{path}?fieldManager=kubectl-edit", json.loads(patch), "application/merge-patch+json"
    )
    if status != 200:
        raise SystemExit(f"edit {path}: HTTP {status}: {answer}")
    return 0


def _get(kube: Kube, args: list[str]) -> int:
    obj = kube.get(args[0])
    for dotted in args[1:] or [""]:
        value = obj
        for key in filter(None, dotted.split(".")):
            if isinstance(value, list) and key.isdigit():
                value = value[int(key)] if int(key) < len(value) else None
            else:
                value = value.get(key) if isinstance(value, dict) else None
        print(json.dumps(value))
    return 0


def _count(kube: Kube, args: list[str]) -> int:
    print(sum(1 for _ in kube.objects(args[0])))
    return 0


def _delete_namespaces(kube: Kube, args: list[str]) -> int:
    for name in args:
        status, answer = kube.request("DELETE", f"/api/v1/namespaces/{name}")
        if status not in (200, 202, 404):
            raise SystemExit(f"delete namespace {name}: HTTP {status}: {answer}")
    return 0


def _wait_gone(kube: Kube, args: list[str]) -> int:
    """Until no namespace is terminating (their objects are gone), at most `args[0]` seconds (120)."""
    deadline = time.monotonic() + float(args[0] if args else 120)
    while time.monotonic() < deadline:
        phases = [n["status"].get("phase") for n in kube.get("/api/v1/namespaces")["items"]]
        if "Terminating" not in phases:
            return 0
        time.sleep(0.5)
    print("namespaces still terminating", file=sys.stderr)
    return 1


def _webhook_probe(kube: Kube, args: list[str]) -> int:
    problems = webhook_probe(kube, args[0])
    if problems:
        print(*problems, sep="\n", file=sys.stderr)
    return 1 if problems else 0


COMMANDS = {
    "wait-ready": _wait_ready,
    "install-crds": _install_crds,
    "dump": _dump,
    "edit": _edit,
    "get": _get,
    "count": _count,
    "delete-namespaces": _delete_namespaces,
    "wait-gone": _wait_gone,
    "webhook-probe": _webhook_probe,
}


def main(argv: list[str]) -> int:
    command = COMMANDS.get(argv[0]) if argv else None
    if command is None:
        raise SystemExit(f"unknown command {argv[:1]}; one of {sorted(COMMANDS)}")
    return command(Kube(Path(os.environ["E2E_CLUSTER_DIR"])), argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
