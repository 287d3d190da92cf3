"""Each plugin's own sandbox options, as ``crmbridge sandbox --option <plugin>.<name>=<value>`` sets them.

The core knows no vendor's knobs: a plugin declares them (``Capabilities.sandbox_options``: name, type,
choices and the ``SandboxOptions.extra`` key its sandbox reads), and this module turns the command
line's ``name=value`` texts into that ``extra`` mapping, refusing what no installed plugin declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from crmbridge.connectors import ConnectorPlugin, SandboxOption
from crmbridge.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def sandbox_extra(assignments: Iterable[str], plugins: Mapping[str, ConnectorPlugin]) -> dict[str, Any]:
    """``extra`` keys and typed values for ``["<connector>.<name>=<value>", ...]``; a ``ConfigError`` (exit 2)
    names the first assignment no plugin declares, or whose value does not parse."""
    extra: dict[str, Any] = {}
    for text in assignments:
        option, raw = _split(text, plugins)
        extra[option.key] = _value(option, raw, text)
    return extra


def describe(plugins: Mapping[str, ConnectorPlugin]) -> list[str]:
    """One line per declared option: ``<connector>.<name> (<choices or type>; default <value>): help``."""
    lines = []
    for name, found in sorted(plugins.items()):
        for option in found.capabilities.sandbox_options:
            lines.append(f"{name}.{option.name} ({_shape(option)}): {option.help}")
    return lines


def _split(text: str, plugins: Mapping[str, ConnectorPlugin]) -> tuple[SandboxOption, str]:
    name, sep, raw = text.partition("=")
    owner, dot, short = name.strip().partition(".")
    if not sep or not dot or not owner or not short:
        raise ConfigError(f"{text!r}: expected <connector>.<option>=<value>, e.g. "
                          f"{_example(plugins)}", key="--option")
    found = plugins.get(owner)
    if found is None:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise ConfigError(f"{text!r}: no connector {owner!r} (installed: {known})", key="--option")
    declared = {o.name: o for o in found.capabilities.sandbox_options}
    if short not in declared:
        known = ", ".join(f"{owner}.{n}" for n in declared) or "none"
        raise ConfigError(f"{text!r}: the {owner} sandbox has no option {short!r} (its options: {known})",
                          key="--option")
    return declared[short], raw.strip()


def _value(option: SandboxOption, raw: str, text: str) -> Any:
    if option.choices:
        if raw.lower() not in option.choices:
            raise ConfigError(f"{text!r}: expected one of {', '.join(option.choices)}", key="--option")
        return raw.lower()
    try:
        return _PARSERS[option.type](raw)
    except ValueError:
        raise ConfigError(f"{text!r}: expected {_EXPECTED[option.type]}", key="--option") from None


def _boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError(raw)


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


_PARSERS: dict[str, Callable[[str], Any]] = {"text": str, "int": int, "float": float, "bool": _boolean,
                                             "list": _items}
_EXPECTED = {"text": "text", "int": "an integer", "float": "a number", "bool": "true or false",
             "list": "comma-separated values"}


def _shape(option: SandboxOption) -> str:
    kind = "|".join(option.choices) if option.choices else option.type
    return kind if option.default is None else f"{kind}; default {option.default}"


def _example(plugins: Mapping[str, ConnectorPlugin]) -> str:
    for name, found in sorted(plugins.items()):
        options: Sequence[SandboxOption] = found.capabilities.sandbox_options
        if options:
            return f"{name}.{options[0].name}=..."
    return "<connector>.<option>=<value>"
