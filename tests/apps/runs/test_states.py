import pytest

from apps.runs.states import TERMINAL_STATES, TRANSITIONS, RunState, sources_of


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(RunState)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_are_final(terminal):
    assert TRANSITIONS[terminal] == frozenset()


def test_only_a_run_a_worker_executes_can_be_lost():
    # A queued or retrying run is published again, and a lost attempt of a run being cancelled
    # ends it cancelled.
    assert sources_of(RunState.LOST) == {RunState.RUNNING}


def test_only_a_queued_run_starts():
    assert sources_of(RunState.RUNNING) == {RunState.QUEUED}


def test_nothing_moves_back_to_queued_but_a_retry():
    assert sources_of(RunState.QUEUED) == {RunState.RETRYING}
