"""Fixtures for the Pipedrive connector's tests: sandboxes, stores, OpenAPI descriptions, webhook receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from crmbridge.connectors import SANDBOX_TOKEN, SandboxOptions, plugin
from crmbridge.mapping import SourceMapping
from crmbridge.sandbox import SandboxServer
from crmbridge.sandbox.recorder import RecordingReceiver
from crmbridge.store import Store
from crmbridge.sync import load_mapping

REPO = Path(__file__).resolve().parents[3]
CONTRACTS = REPO.parent / "shared" / "contracts" / "pipedrive"
MAPPING = REPO / "mappings" / "pipedrive.yaml"
ANCHOR = "2026-06-01T00:00:00Z"


@cache
def _openapi(version: str) -> dict[str, Any]:
    path = CONTRACTS / f"openapi-{version}.yaml"
    if not path.exists():
        pytest.skip(f"Pipedrive's OpenAPI description is not beside the project ({path.name})")
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.fixture(scope="session")
def openapi() -> Callable[[str], dict[str, Any]]:
    """``openapi("v2")`` / ``openapi("v1")``: the parsed description (skips when it is not there)."""
    return _openapi


def _merged(schema: dict[str, Any]) -> dict[str, Any]:
    if "allOf" not in schema:
        return schema
    parts = [_merged(p) for p in schema["allOf"]]
    if not any("properties" in p for p in parts):  # a scalar refined by parts (an enum, a default)
        kinds = [schema.get("type")] + [p.get("type") for p in parts]
        return {"type": next((k for k in kinds if k), None)}
    out: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in schema["allOf"]:
        part = _merged(part)
        out["properties"].update(part.get("properties", {}))
        out["required"] += part.get("required", [])
    return out


_TYPES = {"integer": int, "number": (int, float), "string": str, "boolean": bool, "array": list, "object": dict}


def schema_problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in ``value`` disagrees with an OpenAPI schema: types, required keys, keys it does not name.

    ``null`` is accepted for any key the schema does not require: Pipedrive answers null for absent
    links (a person's org_id) although its descriptions rarely say ``nullable``.
    """
    schema = _merged(schema)
    if value is None:
        return []
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    expected = _TYPES.get(kind) if kind else None
    if expected is not None and (not isinstance(value, expected) or (kind in ("integer", "number")
                                                                        and isinstance(value, bool))):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    problems: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            problems += schema_problems(item, schema.get("items", {}), f"{where}[{i}]")
    elif kind == "object" and "properties" in schema:
        props = schema["properties"]
        problems += [f"{where}: missing required {k!r}" for k in schema.get("required", []) if k not in value]
        if not schema.get("additionalProperties"):
            problems += [f"{where}: key {k!r} is not in the schema" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                problems += schema_problems(value[key], sub, f"{where}.{key}")
    return problems


@pytest.fixture(scope="session")
def check_shape(openapi) -> Callable[..., list[str]]:
    """``check_shape("v2", "get", "/persons", body, status="200")``: problems against the described answer."""

    def check(version: str, method: str, path: str, body: Any, status: str = "200") -> list[str]:
        operation = openapi(version)["paths"][path][method]
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        return schema_problems(body, schema)

    return check


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Start Pipedrive sandboxes (stopped at the end): ``sandbox_factory(contacts=300, faults=..., tokens=...,
    **extra)``."""
    started: list[SandboxServer] = []

    def start(contacts: int = 300, seed: int = 7, faults: dict[str, float] | None = None, time_scale: float = 50.0,
              tokens: tuple[str, ...] = (SANDBOX_TOKEN,), **extra: Any) -> SandboxServer:
        options = SandboxOptions(seed=seed, contacts=contacts, faults=faults or {}, time_scale=time_scale,
                                 extra={"anchor": ANCHOR, **extra}, tokens=tokens)
        server = SandboxServer(options, sources=["pipedrive"]).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'crmbridge.db'}"


def connector_for(server: SandboxServer, **options: Any) -> Any:
    return plugin("pipedrive").sandbox_connector(server.base_url("pipedrive"), time_scale=server.options.time_scale,
                                                 **options)


def mapping_for(store: Store, connector: Any) -> SourceMapping:
    """The project's mapping as the CLI loads it: labels resolved against the account's custom fields,
    whose catalogs the store keeps for a day."""
    return load_mapping(store, connector, MAPPING)


@pytest.fixture
def connect() -> Callable[..., Any]:
    return connector_for


@pytest.fixture
def mapping_path() -> Path:
    return MAPPING


@pytest.fixture
def mapping() -> Callable[[Store, Any], SourceMapping]:
    """``mapping(store, connector)``: the project's mapping, loaded through ``crmbridge.sync.load_mapping``."""
    return mapping_for


class Receiver(RecordingReceiver):
    """A loopback webhook endpoint at ``/webhooks/pipedrive`` (what the sandbox delivers to)."""

    def __init__(self) -> None:
        super().__init__("/webhooks/pipedrive")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (what the sandbox delivers to)."""
    r = Receiver().start()
    yield r
    r.stop()
