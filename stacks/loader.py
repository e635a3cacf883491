"""Loading and validating a stack's configuration, with one readable error for bad input.

Two projects share the code: the platform (`api-platform`, one `platform` object) and the teams'
catalogue stacks (`api-catalogue`, one `catalogue` object). `load_config()` reads the running
stack's object through Pulumi's config (what `pulumi up` does); `load_stack_file()` reads a
`Pulumi.<stack>.yaml` directly (what editors, reviewers and tests do, with no Pulumi engine). Both
raise `ConfigError`, whose message names the stack file, the key path and what is wrong.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import yaml
from pydantic import BaseModel, ValidationError

from components.models.policy import PLATFORM_CATALOGUE
from stacks.config import CatalogueStackConfig, PlatformConfig
from stacks.policies import ROOT, PolicyError, RegoFile, api_rego, check_rego, platform_rego

PROJECT = "api-platform"
PLATFORM_KEY = "platform"
FULL_KEY = f"{PROJECT}:{PLATFORM_KEY}"

BACKUP_ACCESS_KEY_ID = "backupAccessKeyId"
BACKUP_SECRET_ACCESS_KEY = "backupSecretAccessKey"  # noqa: S105 - the name of a config key
# The project's secure keys (see stacks.secrets): key -> what it is, for the README and errors.
SECURE_KEYS = {
    BACKUP_ACCESS_KEY_ID: "access key id for the PostgreSQL backup bucket",
    BACKUP_SECRET_ACCESS_KEY: "secret access key for the PostgreSQL backup bucket",
}


class ConfigError(Exception):
    """A stack configuration that cannot be deployed; the message is meant for the user."""


def platform_policies(cfg: BaseModel) -> list[RegoFile]:
    assert isinstance(cfg, PlatformConfig)
    if not cfg.policy.enabled:
        return []
    return [*platform_rego(cfg.policy.rules), *api_rego(cfg.catalogue, PLATFORM_CATALOGUE, ROOT)]


def catalogue_policies(cfg: BaseModel) -> list[RegoFile]:
    assert isinstance(cfg, CatalogueStackConfig)
    return api_rego(cfg.catalogue, cfg.name, ROOT / "catalogue")


@dataclass(frozen=True)
class Project:
    """A Pulumi project of this repository: its one configuration object, its secure keys, and the
    Rego files a stack's configuration brings (compiled before anything is registered)."""

    name: str
    key: str
    model: type[BaseModel]
    secure_keys: Mapping[str, str]
    policies: Callable[[BaseModel], list[RegoFile]]

    @property
    def full_key(self) -> str:
        return f"{self.name}:{self.key}"


PLATFORM = Project(PROJECT, PLATFORM_KEY, PlatformConfig, SECURE_KEYS, platform_policies)
CATALOGUE = Project("api-catalogue", "catalogue", CatalogueStackConfig, {}, catalogue_policies)
Model = TypeVar("Model", bound=BaseModel)


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def _field_model(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class found by following `loc` (YAML keys and list indexes) from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        by_alias = {f.alias or n: f for n, f in current.model_fields.items()}
        field = by_alias.get(part)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside `X`, `X | None` or `list[X]`, if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _format_path(loc: Sequence[int | str], full_key: str) -> str:
    path = full_key
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        parent = _field_model(model, loc[:-1])
        allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
        return "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if loc and kind not in {"value_error", "assertion_error"} and "input" in error:
        message += f" (got {error['input']!r})"
    return message


# List items that have a name, and the key holding it: messages name the item, not only its index.
NAMED_ITEMS = {"apis": ("API", "name"), "consumers": ("consumer", "username")}


def _subject(raw: object, loc: Sequence[int | str]) -> str:
    """` (API chat)` when the error is inside a named catalogue item."""
    node, found = raw, ""
    for parent, part in pairwise(loc):
        if isinstance(node, dict):
            node = node.get(parent)
        if isinstance(part, int) and parent in NAMED_ITEMS and isinstance(node, list) and part < len(node):
            item = node[part]
            label, key = NAMED_ITEMS[str(parent)]
            if isinstance(item, dict) and item.get(key):
                found = f" ({label} {item[key]})"
    return found


def _setting_paths(model: type[BaseModel], prefix: str = "") -> dict[str, list[str]]:
    """Each key name of the platform object (camelCase) -> the paths where it occurs."""
    found: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}.{key}" if prefix else key
        found.setdefault(key.lower(), []).append(path)
        inner = _inner_model(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            for sub, paths in _setting_paths(inner, path).items():
                found.setdefault(sub, []).extend(paths)
    return found


def stray_key_hint(name: str, project: Project = PLATFORM) -> str:
    """What a project-namespace key was probably meant to be, as the command that sets it."""
    settings = _setting_paths(project.model)
    paths = settings.get(name.lower())
    if not paths:  # `kongImage` -> kong.image
        words = ".".join(w.lower() for w in re.findall(r"[a-z0-9]+|[A-Z][a-z0-9]*", name))
        paths = [p for ps in settings.values() for p in ps if p.lower() == words or p.lower().endswith("." + words)]
    if not paths:
        close = difflib.get_close_matches(name.lower(), settings, n=1)
        paths = settings[close[0]] if close else []
    if not paths:
        return f"every setting lives in the {project.key} object (see docs/configuration.md)"
    commands = [f"`pulumi config set --path {project.key}.{path} <value>`" for path in sorted(paths)[:4]]
    more = f" (and {len(paths) - 4} more places)" if len(paths) > 4 else ""
    return f"settings live in the {project.key} object: " + " or ".join(commands) + more


def check_keys(keys: Iterable[str], source: str, project: Project = PLATFORM) -> None:
    """Refuse a key in the project's namespace that the program would ignore (`pulumi config set
    minReplicas 5` writes `api-platform:minReplicas`): only the project's object and secure keys."""
    allowed = {project.full_key, *(f"{project.name}:{key}" for key in project.secure_keys)}
    stray = sorted(k for k in keys if k.startswith(f"{project.name}:") and k not in allowed)
    if stray:
        lines = [
            f"  - {key}: not a setting of this project; {stray_key_hint(key.split(':', 1)[1], project)}"
            for key in stray
        ]
        raise ConfigError(f"{source}: unknown configuration key{'s' if len(stray) > 1 else ''}:\n" + "\n".join(lines))


def format_validation_error(source: str, exc: ValidationError, raw: object = None, project: Project = PLATFORM) -> str:
    errors = exc.errors()
    lines = [f"{source}: invalid stack configuration ({len(errors)} problem{'s' if len(errors) > 1 else ''}):"]
    for error in errors:
        where = _format_path(error["loc"], project.full_key) + _subject(raw, error["loc"])
        lines.append(f"  - {where}: {_describe(error, project.model)}")
    return "\n".join(lines)


def validate(raw: object, source: str, project: Project) -> BaseModel:
    """Validate the raw value of the project's object read from `source`."""
    if raw is None:
        raise ConfigError(f"{source}: required key {project.full_key} is missing (see docs/configuration.md)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {project.full_key} must be an object, got {type(raw).__name__}")
    try:
        model = project.model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, raw, project)) from None
    try:
        check_rego(project.policies(model))
    except PolicyError as error:
        raise ConfigError(f"{source}: {error}") from None
    return model


def validate_platform(raw: object, source: str) -> PlatformConfig:
    """Validate the raw `api-platform:platform` value read from `source`."""
    return as_model(validate(raw, source, PLATFORM), PlatformConfig)


def as_model(value: BaseModel, model: type[Model]) -> Model:
    assert isinstance(value, model), type(value)
    return value


def load_config(project: Project) -> BaseModel:
    """Read and validate the running stack's configuration through Pulumi."""
    source = stack_file_name(pulumi.get_stack())
    check_keys(pulumi.runtime.config.CONFIG.get(), source, project)
    text = pulumi.Config(project.name).get(project.key)
    if text is None:
        return validate(None, source, project)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: {project.full_key} is not a valid object: {exc}") from None
    return validate(raw, source, project)


def load_platform_config() -> PlatformConfig:
    return as_model(load_config(PLATFORM), PlatformConfig)


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file, keys as written (e.g. `api-platform:platform`)."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path.name}: stack file not found at {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {exc}") from None
    config = (document or {}).get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: 'config' must be a mapping")
    return config


def load_stack_file(path: Path) -> PlatformConfig:
    """Validate a platform `Pulumi.<stack>.yaml` without the Pulumi engine."""
    return as_model(load_project_stack_file(path, PLATFORM), PlatformConfig)


def load_project_stack_file(path: Path, project: Project) -> BaseModel:
    """Validate a stack file of either project without the Pulumi engine."""
    config = read_stack_file(path)
    check_keys(config, path.name, project)
    return validate(config.get(project.full_key), path.name, project)
