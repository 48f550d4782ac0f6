"""The lifecycle table in-process: legal paths, illegal ones raise, flags follow the phase."""

from __future__ import annotations

import pytest

from lspguard.errors import IllegalTransition
from lspguard.proxy.lifecycle import TRANSITIONS, Lifecycle, Phase

pytestmark = pytest.mark.timeout(10)


def test_every_phase_is_in_the_table_and_every_live_phase_can_stop() -> None:
    assert set(TRANSITIONS) == set(Phase)
    for phase, targets in TRANSITIONS.items():
        if phase not in (Phase.STOPPING, Phase.EXITED):
            assert Phase.STOPPING in targets, phase
    assert TRANSITIONS[Phase.EXITED] == frozenset()


@pytest.mark.parametrize("path", [
    [Phase.INITIALIZING, Phase.RUNNING, Phase.RESTARTING, Phase.RUNNING, Phase.STOPPING,
     Phase.EXITED],
    [Phase.INITIALIZING, Phase.WAITING, Phase.RUNNING, Phase.WAITING, Phase.RESTARTING,
     Phase.DEGRADED, Phase.RESTARTING, Phase.RUNNING],
    [Phase.RESTARTING, Phase.INITIALIZING, Phase.RUNNING],  # it died before the editor came
])
def test_legal_paths(path: list[Phase]) -> None:
    seen: list[tuple[Phase, Phase]] = []
    life = Lifecycle(lambda old, new: seen.append((old, new)))
    for phase in path:
        assert life.to(phase)
    assert [new for _, new in seen] == path
    assert not life.to(path[-1])  # staying is a no-op, and not reported


@pytest.mark.parametrize(("start", "illegal"), [
    ([], Phase.RUNNING),  # running before the editor is even connected
    ([Phase.INITIALIZING, Phase.RUNNING], Phase.DEGRADED),  # degraded only after restarts
    ([Phase.INITIALIZING, Phase.RUNNING, Phase.WAITING], Phase.DEGRADED),
    ([Phase.STOPPING], Phase.RUNNING),  # no way back from stopping
    ([Phase.STOPPING, Phase.EXITED], Phase.STOPPING),
])
def test_illegal_transitions_raise(start: list[Phase], illegal: Phase) -> None:
    life = Lifecycle()
    for phase in start:
        life.to(phase)
    with pytest.raises(IllegalTransition, match=illegal.value):
        life.to(illegal)


def test_exited_is_always_reachable_and_advance_only_from_the_expected_phase() -> None:
    life = Lifecycle()
    assert not life.advance(Phase.INITIALIZING, Phase.RUNNING)
    assert life.phase is Phase.STARTING
    life.to(Phase.INITIALIZING)
    assert life.advance(Phase.INITIALIZING, Phase.RUNNING)
    life.to(Phase.RESTARTING)
    assert life.to(Phase.EXITED)  # run()'s end, whatever left it where it was
