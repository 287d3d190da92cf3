"""Seeded kill points: the real ``crmbridge`` command, killed with SIGKILL at an exact point of its work.

Run as ``python killpoints.py <crmbridge arguments>`` with ``TEST_KILL_AT=module:Class.method@n``: the
child wraps that method and kills itself with SIGKILL as soon as its n-th call has returned, that is
after the CRM (or the chat channel) has carried the call out and before the caller could record it.
A random moment would test a different interleaving every run; a seeded n tests the same one every
time, and the test chooses n from its seed.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

KILL_AT = "TEST_KILL_AT"


def parse(spec: str) -> tuple[str, str, str, int]:
    """``module:Class.method@n`` -> (module, class, method, n)."""
    target, _, count = spec.rpartition("@")
    module, _, qualified = target.partition(":")
    owner, _, method = qualified.partition(".")
    if not (module and owner and method and count.isdigit() and int(count) > 0):
        raise ValueError(f"{KILL_AT}={spec!r}: expected module:Class.method@n with n >= 1")
    return module, owner, method, int(count)


def install(spec: str, kill: Callable[[], object] | None = None) -> None:
    """Wrap the named method so that its n-th return ends the process (``kill`` is for unit use)."""
    module, owner, method, n = parse(spec)
    cls = getattr(importlib.import_module(module), owner)
    original = getattr(cls, method)
    calls = itertools.count(1)
    die = kill or (lambda: os.kill(os.getpid(), signal.SIGKILL))

    @functools.wraps(original)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if next(calls) == n:
            die()
        return result

    setattr(cls, method, wrapped)


def command(script_args: list[str]) -> list[str]:
    """The child's command line: this file run by the test's interpreter."""
    return [sys.executable, __file__, *script_args]


if __name__ == "__main__":
    install(os.environ[KILL_AT])
    from crmbridge.cli import main

    sys.argv = ["crmbridge", *sys.argv[1:]]
    main()
