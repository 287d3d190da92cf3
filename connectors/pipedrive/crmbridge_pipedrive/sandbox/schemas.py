"""Request bodies checked as Pipedrive checks them: against the request schemas of its OpenAPI files.

The schemas are read once per process from Pipedrive's own descriptions (``openapi-v1.yaml`` and
``openapi-v2.yaml``, kept beside the project under ``shared/contracts/pipedrive``, or in the folder
the sandbox option ``pipedrive_openapi_dir`` names) for the write routes the sandbox serves. Where the
files are not there (an installed package), ``request_schemas.json`` beside this module holds the same
schemas, extracted from them; a test keeps the two equal.

A body fails with the first problem found: a value of the wrong type, a key the schema does not
name, a missing required key, a value outside an enum, a date that is not ``YYYY-MM-DD``. Custom
fields (``custom_fields``) are free-form, as the schemas say.

The descriptions contradict the API's own answers in a few places; ``ERRATA`` corrects those, each
with its reason, so our checks follow what Pipedrive accepts rather than a typo.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

SNAPSHOT = Path(__file__).with_name("request_schemas.json")
CONTRACTS = Path("shared") / "contracts" / "pipedrive"
V2_KINDS = ("persons", "organizations", "deals", "activities", "pipelines", "stages")
# (API version, method, path in the OpenAPI file): the write routes the sandbox serves.
ROUTES: tuple[tuple[str, str, str], ...] = (
    *(("v2", "post", f"/{kind}") for kind in V2_KINDS),
    *(("v2", "patch", f"/{kind}/{{id}}") for kind in V2_KINDS),
    *(("v1", "post", f"/{kind}") for kind in ("personFields", "organizationFields", "dealFields")),
    ("v1", "post", "/leads"), ("v1", "patch", "/leads/{id}"), ("v1", "post", "/webhooks"),
    *(("v1", "put", f"/{kind}/{{id}}/merge") for kind in ("persons", "organizations", "deals")),
)
_DROP = ("description", "example", "title", "default")
_CUSTOM_FIELDS = {"type": "object", "additionalProperties": True}
_LABEL = {"type": "string"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TYPES: dict[str, type | tuple[type, ...]] = {"integer": int, "number": (int, float), "string": str,
                                              "boolean": bool, "array": list, "object": dict}


def _fix_person(schema: dict[str, Any], post: bool) -> None:
    props = schema["properties"]
    # Every person answer carries custom_fields and v2 writes them only there; the description omits them.
    props["custom_fields"] = dict(_CUSTOM_FIELDS)
    # An e-mail's or phone's label is a word ("work", "home") in every answer, not a boolean.
    for key in ("emails", "phones"):
        props[key]["items"]["properties"]["label"] = dict(_LABEL)
    if post:  # a person needs a name; "title" is copied from the deal's schema
        schema["required"] = ["name"]


def _fix_organization(schema: dict[str, Any], post: bool) -> None:
    if post:  # an organization needs a name; the description asks for a "title" it does not define
        schema["required"] = ["name"]


def _fix_webhook(schema: dict[str, Any], post: bool) -> None:
    # The enums list webhooks v1's actions and objects only; version 2.0 takes create, change and
    # delete, and more objects (lead, ...): each version's lists are checked in ``webhooks.py``.
    for key in ("event_action", "event_object"):
        schema["properties"][key].pop("enum", None)


ERRATA = {("v2", "post", "/persons"): functools.partial(_fix_person, post=True),
          ("v2", "patch", "/persons/{id}"): functools.partial(_fix_person, post=False),
          ("v2", "post", "/organizations"): functools.partial(_fix_organization, post=True),
          ("v1", "post", "/webhooks"): functools.partial(_fix_webhook, post=True)}


def _clean(node: Any) -> Any:
    """A schema without prose, with ``allOf`` folded into one object (or one refined scalar)."""
    if isinstance(node, list):
        return [_clean(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: ({name: _clean(sub) for name, sub in v.items()} if k == "properties" else _clean(v))
           for k, v in node.items() if k not in _DROP}
    parts = out.pop("allOf", None)
    if parts:
        for part in parts:
            for key, value in part.items():
                if key == "properties":
                    out.setdefault("properties", {}).update(value)
                elif key == "required":
                    out["required"] = [*out.get("required", []), *value]
                else:
                    out.setdefault(key, value)
    return out


def extract(descriptions: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The request schemas of ``ROUTES`` from the parsed OpenAPI files (``{"v1": ..., "v2": ...}``),
    keyed ``"v2 patch /deals/{id}"``, without descriptions and before ``ERRATA``."""
    out: dict[str, dict[str, Any]] = {}
    for version, method, path in ROUTES:
        operation = descriptions[version]["paths"][path][method]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        out[f"{version} {method} {path}"] = _clean(schema)
    return out


def find_contracts(extra_dir: str | None = None, start: Path | None = None) -> Path | None:
    """The folder holding Pipedrive's OpenAPI files: the one named, or ``shared/contracts/pipedrive``
    beside any folder above this package (where the project keeps it)."""
    if extra_dir:
        return Path(extra_dir)
    for parent in (start or Path(__file__).resolve()).parents:
        candidate = parent / CONTRACTS
        if (candidate / "openapi-v2.yaml").exists() and (candidate / "openapi-v1.yaml").exists():
            return candidate
    return None


@functools.cache
def _load(folder: str | None) -> dict[str, dict[str, Any]]:
    if folder is None:
        raw = orjson.loads(SNAPSHOT.read_bytes())
    else:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = extract({v: yaml.load((Path(folder) / f"openapi-{v}.yaml").read_text(), Loader=loader)
                       for v in ("v1", "v2")})
    schemas = copy.deepcopy(raw)
    for (version, method, path), fix in ERRATA.items():
        fix(schemas[f"{version} {method} {path}"])
    return schemas


def request_schemas(contracts_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """Every served write route's request schema, errata applied; read once per folder and process."""
    folder = find_contracts(contracts_dir)
    return _load(str(folder) if folder else None)


def problems(value: Any, schema: Mapping[str, Any], where: str = "") -> Iterable[str]:
    """What in ``value`` disagrees with ``schema``, as Pipedrive words it (``name: must be a string``)."""
    name = where or "body"
    if value is None:
        if schema.get("nullable"):
            return
        yield f"{name}: must not be null"
        return
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    expected = _TYPES.get(kind) if kind else None
    if expected is not None and (not isinstance(value, expected) or
                                 (kind in ("integer", "number") and isinstance(value, bool))):
        yield f"{name}: must be {'an' if kind in ('integer', 'array', 'object') else 'a'} {kind}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{name}: must be one of {', '.join(map(str, schema['enum']))}"
    if schema.get("format") == "date" and isinstance(value, str) and not _DATE.match(value):
        yield f"{name}: must be a date (YYYY-MM-DD)"
    if kind == "array":
        for i, item in enumerate(value):
            yield from problems(item, schema.get("items") or {}, f"{name}[{i}]")
    elif kind == "object" and "properties" in schema:
        yield from _object_problems(value, schema, where)


def _object_problems(value: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> Iterable[str]:
    props = schema["properties"]
    prefix = f"{where}." if where else ""
    for key in schema.get("required", ()):
        if value.get(key) in (None, ""):
            yield f"{prefix}{key}: is required"
    if schema.get("additionalProperties") is not True:
        for key in value:
            if key not in props:
                yield f"{prefix}{key}: is not an allowed field"
    for key, sub in props.items():
        if key in value:
            yield from problems(value[key], sub, f"{prefix}{key}")


def first_problem(route: str, body: Mapping[str, Any], contracts_dir: str | None = None) -> str | None:
    """``"Validation failed: …"`` for the first thing ``body`` gets wrong on ``route``, else None."""
    schema = request_schemas(contracts_dir)[route]
    for problem in problems(body, schema):
        return f"Validation failed: {problem}"
    return None
