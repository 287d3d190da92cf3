"""The kill-point helper itself: it kills at the n-th return of the named method and at no other, and a
misspelt kill point fails loudly instead of letting the run finish unharmed (a test would then pass
without ever killing anything)."""

from __future__ import annotations

import pytest

from . import killpoints


class Worker:
    def step(self, value: int) -> int:
        return value * 2


def test_the_kill_comes_right_after_the_nth_call_has_returned() -> None:
    kills: list[int] = []
    done: list[int] = []
    original = Worker.step
    try:
        killpoints.install(f"{__name__}:Worker.step@3", kill=lambda: kills.append(len(done)))
        worker = Worker()
        for i in range(5):
            done.append(worker.step(i))
    finally:
        Worker.step = original  # type: ignore[method-assign]
    assert done == [0, 2, 4, 6, 8]
    assert kills == [2]  # during the third call, after its work, before its caller saw the answer


@pytest.mark.parametrize("spec", ["Worker.step@1", f"{__name__}:Worker@1", f"{__name__}:Worker.step",
                                  f"{__name__}:Worker.step@0", f"{__name__}:Worker.step@x"])
def test_a_malformed_kill_point_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="TEST_KILL_AT"):
        killpoints.install(spec)


def test_a_kill_point_naming_nothing_that_exists_is_refused() -> None:
    with pytest.raises(AttributeError):
        killpoints.install(f"{__name__}:Worker.stepp@1")
