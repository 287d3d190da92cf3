"""YAML loading that remembers where every key stands, so configuration errors name file, line and key.

``load_yaml`` returns plain Python data and a ``Locator``; validation code turns a key path such as
``("objects", "contacts", "fields", "email")`` into ``file:line`` when it reports a problem. Pydantic
validation errors are translated the same way by ``validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from crmbridge.errors import ConfigError

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Locator:
    """Line numbers (1-based) of every mapping key and sequence item in one YAML file."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: Sequence[str | int]) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, message: str, path: Sequence[str | int]) -> ConfigError:
        key = ".".join(str(p) for p in path) or None
        return ConfigError(message, file=self.file, line=self.line(path), key=key)


def _construct(node: yaml.Node, path: PathKey, locator: Locator, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, path, locator, loader)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError("mapping keys must be plain values", file=locator.file,
                                  line=key_node.start_mark.line + 1)
            key_path = (*path, key)
            if key in out:
                raise ConfigError("duplicate key", file=locator.file, line=key_node.start_mark.line + 1,
                                  key=".".join(str(p) for p in key_path))
            locator.lines[key_path] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, key_path, locator, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            locator.lines[(*path, i)] = item.start_mark.line + 1
            items.append(_construct(item, (*path, i), locator, loader))
        return items
    # Scalars keep YAML's own typing (ints, bools, nulls, dates) through the loader's constructors.
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a date that does not exist (2025-02-30) and the like
        raise ConfigError(f"invalid value {node.value!r}: {exc}", file=locator.file, line=node.start_mark.line + 1,
                          key=".".join(str(p) for p in path) or None) from None


def read_config_file(path: str | Path) -> str:
    """A configuration file's text; a missing or unreadable file is a ``ConfigError`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=path) from None


def load_yaml(path: str | Path) -> tuple[Any, Locator]:
    return parse_yaml(read_config_file(path), Locator(str(path)))


def parse_yaml(text: str, locator: Locator) -> tuple[Any, Locator]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"invalid YAML: {exc.problem}", file=locator.file,
                          line=mark.line + 1 if mark else None) from None
    if node is None:
        return None, locator
    locator.lines[()] = node.start_mark.line + 1
    return _construct(node, (), locator, yaml.SafeLoader("")), locator


def validate(model: type[M], data: Any, locator: Locator, base: PathKey = ()) -> M:
    """Validate ``data`` with a pydantic model, reporting the first error at its file, line and key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        raise locator.error(first["msg"], (*base, *loc)) from None
