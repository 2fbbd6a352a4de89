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


def test_only_a_queued_run_starts():
    assert sources_of(RunState.RUNNING) == {RunState.QUEUED}


def test_nothing_moves_back_to_queued_but_a_retry():
    assert sources_of(RunState.QUEUED) == {RunState.RETRYING}
