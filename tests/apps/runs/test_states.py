import pytest

from apps.runs.states import TERMINAL_STATES, TRANSITIONS, RunState, sources_of


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(RunState)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_are_final(terminal):
    assert TRANSITIONS[terminal] == frozenset()


@pytest.mark.parametrize("state", sorted(set(RunState) - TERMINAL_STATES))
def test_every_unfinished_state_can_be_lost(state):
    assert RunState.LOST in TRANSITIONS[state]


def test_sources_of_running_are_pending_and_queued():
    assert sources_of(RunState.RUNNING) == {RunState.PENDING, RunState.QUEUED}


def test_nothing_moves_back_to_pending():
    assert sources_of(RunState.PENDING) == frozenset()
