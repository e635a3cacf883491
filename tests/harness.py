"""Run the real program (`__main__.py`) for a stack under Pulumi mocks and record everything.

Each run gets a fresh event loop and a fresh context (Pulumi keeps its root resource and
config in context variables), `preview=False` so every value is known, and a monitor that
records each registered resource's type, name, inputs (wire names, as the engine and the
policy pack see them), parent, dependencies and options. Tests assert on the recording after
the run has finished, so no assertion can hide in a callback that never runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import json
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from stacks.loader import CATALOGUE, FULL_KEY, PROJECT, SECURE_KEYS, ConfigError, validate_platform

# What the secure keys hold in tests (a stack's real values are set with `--secret`).
PLACEHOLDER_SECRETS = {f"{PROJECT}:{key}": f"placeholder-{key}" for key in SECURE_KEYS}

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = rpc._special_sig_key  # the wire marker of a secret value
SECRET_VALUE = rpc._special_secret_sig


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    provider: str
    custom: bool
    secret_paths: list[str]
    additional_secret_outputs: list[str]
    ignore_changes: list[str]
    delete_before_replace: bool
    protect: bool = False
    retain_on_delete: bool = False

    def is_secret(self, path: str) -> bool:
        """Whether the input at a dotted path is sent to the engine as a secret (or inside one)."""
        return any(
            path == p or path.startswith(p + ".") or path.startswith(p + "[") or not p for p in self.secret_paths
        )

    @property
    def kind(self) -> str:
        return str(self.inputs.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.inputs.get("metadata") or {})

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.inputs.get("spec") or {})

    @property
    def pod_spec(self) -> dict[str, Any]:
        """The pod spec of a workload (Deployment, Job, ...)."""
        return dict(self.spec["template"]["spec"])

    def container(self, name: str | None = None) -> dict[str, Any]:
        """A container by name; without one, the workload's own (the first: sidecars follow it)."""
        containers = self.pod_spec["containers"]
        if name is None:
            return dict(containers[0])
        return dict(next(c for c in containers if c["name"] == name))

    def env(self, container: str | None = None) -> dict[str, Any]:
        """name -> value, or the valueFrom mapping for variables taken from elsewhere."""
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container(container).get("env", [])}


@dataclass
class Recording:
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None
    registered: int = 0  # resources registered (excluding the stack), recorded in detail or not
    calls: list[RecordedCall] = field(default_factory=list)  # function invokes, in order
    computed: dict[str, dict[str, Any]] = field(default_factory=dict)  # resource name -> outputs the mocks made

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]

    def one(self, typ: str, name: str | None = None) -> RecordedResource:
        matches = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(matches) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in matches]}"
        return matches[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def kubernetes_objects(self) -> list[RecordedResource]:
        """Every custom resource of the Kubernetes provider except the provider itself."""
        return [r for r in self.resources if r.custom and r.type.startswith("kubernetes:") and r.kind]


def _plain(value: Any) -> Any:
    """The value with every secret wrapper replaced by what it wraps, and whole numbers as ints
    (protobuf carries every number as a double)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            yield path
            return
        for key, item in value.items():
            yield from _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, f"{path}[{index}]")


CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}


@functools.cache
def _private_key_outputs(name: str, algorithm: str, curve: str, rsa_bits: int) -> dict[str, str]:
    """A real key of the requested algorithm, so pins and fingerprints derived from it are real; the
    same for the same resource within a process, as the provider keeps a key across updates."""
    key: Any
    if algorithm == "ECDSA":
        key = ec.generate_private_key(CURVES[curve])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return {
        # EC PRIVATE KEY or RSA PRIVATE KEY, as the provider writes them
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
        "publicKeyPem": key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


def _private_key(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The provider's defaults: ECDSA on P224, RSA with 2048 bits."""
    algorithm = str(inputs["algorithm"])
    curve, rsa_bits = str(inputs.get("ecdsaCurve", "P224")), int(inputs.get("rsaBits", 2048))
    return dict(_private_key_outputs(name, algorithm, curve, rsa_bits))


# Outputs the random and tls providers compute, so values derived from them are realistic.
COMPUTED_OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "random:index/randomPassword:RandomPassword": lambda name, _: {"result": f"mock-password-{name}"},
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/selfSignedCert:SelfSignedCert": lambda name, _: {
        "certPem": f"-----BEGIN CERTIFICATE-----\nmock-{name}\n-----END CERTIFICATE-----\n",
    },
}


@dataclass
class RecordedCall:
    token: str
    args: dict[str, Any]
    registered_before: int  # how many resources had been recorded when the call was made


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, as `pulumi up` does for objects the provider accepts as given.

    Function calls (invokes) are recorded and answer nothing: the chart renders the program asks
    the Kubernetes provider for are checked by the chart tests with the real Helm instead.
    """

    def __init__(self, recording: Recording, stack_outputs: dict[str, dict[str, Any]] | None = None):
        self.recording = recording
        self.stack_outputs = stack_outputs or {}  # what StackReferences read: stack name -> outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs["name"])
            if name not in self.stack_outputs:
                raise RuntimeError(f"no stack {name} (StackReference)")
            return name, {"name": name, "outputs": self.stack_outputs[name], "secretOutputNames": []}
        compute = COMPUTED_OUTPUTS.get(args.typ)
        computed = compute(args.name, dict(args.inputs)) if compute else {}
        if computed:
            self.recording.computed[args.name] = computed
        return f"{args.name}-id", {**args.inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        call = RecordedCall(args.token, _plain(dict(args.args)), len(self.recording.resources))
        self.recording.calls.append(call)
        return {}, []


class CountingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's own mock monitor, counting registrations: the cost floor of the mocks themselves."""

    def __init__(self, mocks: pulumi.runtime.Mocks, recording: Recording):
        super().__init__(mocks)
        self.recording = recording

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.recording.registered += 1
        return response


class RecordingMonitor(CountingMonitor):
    """Also records every resource's type, name, inputs, parent, dependencies and options."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object)
            self.recording.resources.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=_plain(rpc.deserialize_properties(request.object, keep_unknowns=True)),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    custom=bool(request.custom),
                    secret_paths=list(_secret_paths(raw)),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response


def stack_config(stack: str, project_dir: Path = ROOT) -> dict[str, Any]:
    """The `config:` mapping of `Pulumi.<stack>.yaml`, as committed."""
    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text())
    return dict(document.get("config") or {})


def platform_object(stack: str) -> dict[str, Any]:
    """A deep copy of the stack's `api-platform:platform` object, for tests to mutate."""
    return copy.deepcopy(stack_config(stack)[FULL_KEY])


def refusal(change: Callable[[dict[str, Any]], None], stack: str = "prod") -> str:
    """The ConfigError message for the committed stack object after `change`; fails if it is accepted."""
    raw = platform_object(stack)
    change(raw)
    try:
        validate_platform(raw, f"Pulumi.{stack}.yaml")
    except ConfigError as error:
        return str(error)
    raise AssertionError("the changed configuration was accepted")


def run_program(
    stack: str,
    platform: dict[str, Any] | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    secrets: dict[str, str] | None = None,
    extra_config: dict[str, Any] | None = None,
    program: Path | None = None,
    record: bool = True,
) -> Recording:
    """Run `__main__.py` for `stack` under recording mocks.

    `platform` replaces the committed platform object; `mutate` edits a copy of it in place.
    `secrets` are the secure keys (full names) set for the run; None sets every known secure key
    to a placeholder. A failure of the program is kept in `Recording.error` together with
    whatever was registered before it. `record=False` only counts registrations (benchmarks).
    """
    config = stack_config(stack)
    config.update(extra_config or {})
    if platform is not None:
        config[FULL_KEY] = platform
    if mutate is not None:
        config[FULL_KEY] = copy.deepcopy(config[FULL_KEY])
        mutate(config[FULL_KEY])
    secrets = dict(PLACEHOLDER_SECRETS if secrets is None else secrets)
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = secrets.pop(key, f"test-value-of-{key}")
            secret_keys.append(key)
        else:
            values[key] = value if isinstance(value, str) else json.dumps(value)
    for key, value in secrets.items():
        values[key] = value
        secret_keys.append(key)
    recording = Recording()
    monitor = (RecordingMonitor if record else CountingMonitor)(RecordingMocks(recording), recording)
    contextvars.Context().run(_run, PROJECT, stack, values, secret_keys, monitor, program or ROOT / "__main__.py")
    return recording


CATALOGUE_DIR = ROOT / "catalogue"


def catalogue_object(stack: str) -> dict[str, Any]:
    """A deep copy of a catalogue stack's `api-catalogue:catalogue` object."""
    return copy.deepcopy(stack_config(stack, CATALOGUE_DIR)[CATALOGUE.full_key])


def run_catalogue(
    stack: str,
    platform_outputs: dict[str, Any],
    catalogue: dict[str, Any] | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    record: bool = True,
) -> Recording:
    """Run a team catalogue stack (catalogue/__main__.py) under recording mocks, its StackReference
    reading `platform_outputs` (a platform Recording's outputs)."""
    raw = catalogue if catalogue is not None else catalogue_object(stack)
    if mutate is not None:
        raw = copy.deepcopy(raw)
        mutate(raw)
    recording = Recording()
    mocks = RecordingMocks(recording, {str(raw.get("platformStack")): platform_outputs})
    monitor = (RecordingMonitor if record else CountingMonitor)(mocks, recording)
    values = {CATALOGUE.full_key: json.dumps(raw)}
    contextvars.Context().run(_run, CATALOGUE.name, stack, values, [], monitor, CATALOGUE_DIR / "__main__.py")
    return recording


def _run(
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    monitor: CountingMonitor,
    program_path: Path,
) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    recording = monitor.recording
    try:
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config(config, secret_keys)
        exports: dict[str, Any] = {}
        original_export = pulumi.export

        async def resolve_exports() -> None:
            for name, value in exports.items():
                output = pulumi.Output.from_input(value)
                recording.outputs[name] = await output.future()
                if await output.is_secret():
                    recording.secret_outputs.add(name)

        def program() -> Any:
            pulumi.export = exports.__setitem__  # type: ignore[assignment]
            try:
                runpy.run_path(str(program_path), run_name="__main__")
            finally:
                pulumi.export = original_export
            return asyncio.ensure_future(resolve_exports())

        try:
            pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
        except Exception as error:  # the test decides what a failure means
            recording.error = error
    finally:
        asyncio.set_event_loop(None)
        loop.close()
