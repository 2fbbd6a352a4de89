"""apps.core.outages: an outage is logged once, reminded at most once a minute, and its end is
logged; repeated library lines are collapsed."""

import logging

from prometheus_client import REGISTRY

from apps.core.outages import Outage, RepeatedLinesFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def up(dependency: str) -> float | None:
    return REGISTRY.get_sample_value("dts_dependency_up", {"dependency": dependency})


def test_an_outage_is_logged_once_then_reminded_each_minute_then_its_end(caplog):
    clock = Clock()
    outage = Outage(
        dependency="Thing", logger=logging.getLogger("test.outage"), address="h:1", clock=clock
    )
    assert up("Thing") == 1

    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(260):  # 4 a second for 65 s
            outage.failed(ConnectionRefusedError("refused\nmore detail"))
            clock.now += 0.25
        assert outage.down
        assert up("Thing") == 0
        outage.succeeded()
        outage.succeeded()

    assert [record.getMessage() for record in caplog.records] == [
        "Thing at h:1 unreachable: ConnectionRefusedError: refused; retrying until it returns",
        "Thing at h:1 still unreachable after 60 s (241 failed attempts): "
        "ConnectionRefusedError: refused",
        "Thing at h:1 reachable again after 65 s (260 failed attempts)",
    ]
    assert not outage.down
    assert up("Thing") == 1


def test_successes_without_an_outage_log_nothing(caplog):
    outage = Outage(dependency="Quiet", logger=logging.getLogger("test.quiet"))
    with caplog.at_level(logging.DEBUG, logger="test.quiet"):
        for _ in range(10):
            outage.succeeded()
    assert caplog.records == []


def record(message: str, *args: object, name: str = "lib") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_similar_lines_pass_once_a_window_and_say_how_many_were_dropped():
    clock = Clock()
    repeated = RepeatedLinesFilter(window=60, clock=clock)
    passed = []
    for n in range(200):  # 20 a second for ten seconds, then one more after the window
        line = record("Connect to 127.0.0.1:%d failed (after %dms)", 59092, n % 3)
        if repeated.filter(line):
            passed.append(line.getMessage())
        clock.now += 0.05
    clock.now += 60
    last = record("Connect to 127.0.0.1:%d failed (after %dms)", 59092, 12)
    assert repeated.filter(last)
    passed.append(last.getMessage())

    assert passed == [
        "Connect to 127.0.0.1:59092 failed (after 0ms)",
        "Connect to 127.0.0.1:59092 failed (after 12ms)"
        " (199 similar lines dropped before this one)",
    ]


def test_different_lines_and_loggers_are_not_collapsed():
    repeated = RepeatedLinesFilter(window=60, clock=Clock())
    assert repeated.filter(record("broker down"))
    assert repeated.filter(record("topic created"))
    assert repeated.filter(record("broker down", name="other"))
    assert not repeated.filter(record("broker down"))
