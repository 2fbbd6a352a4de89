"""One trial: fresh data for each peer, its beat process(es), a collector on its queue, and what
they did, measured the same way for every peer.

A trial has one *lane* per peer under test. The full benchmark runs one lane at a time; `--quick`
runs both peers' lanes side by side to fit in a few minutes.
"""

import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connections

from bench.scheduler import infra
from bench.scheduler.peers import Arrival, Peer
from bench.scheduler.stats import (
    Observation,
    Pattern,
    Shape,
    Tally,
    edit_effects,
    summary_ms,
    tally,
)

# Schedulers are started so that they are loaded and idle at least this long before the due time.
LEAD_MARGIN_S = 10.0
# A started scheduler is ready (loaded and waiting) once it used less than this share of a core...
READY_CPU_SHARE = 0.3
# ...over this long.
READY_QUIET_S = 2.0
POLL_S = 1.0


@dataclass(frozen=True)
class BurstSpec:
    """Schedules due at whole minutes: observe `due_minutes` consecutive due minutes."""

    scenario: str
    pattern: Pattern
    size: int
    due_minutes: int = 1
    cap_s: float = 180.0  # stop observing this long after the first due time at the latest
    settle_s: float = 1.0  # keep collecting this long after the last expected fire (duplicates)
    replicas: dict[str, int] = field(default_factory=dict)  # by peer slug; default 1
    peers: tuple[str, ...] | None = None  # the peers (slugs) it is for; None: all
    edits: int = 0  # idle schedules edited one a second, from 5 s before the first due time
    edits_for_s: float = 30.0  # ...for at least this long (and until the burst is published)


@dataclass(frozen=True)
class IdleSpec:
    scenario: str
    size: int
    window_s: float = 60.0
    ready_cap_s: float = 240.0
    peers: tuple[str, ...] | None = None


@dataclass
class Lane:
    peer: Peer
    replicas: int = 1
    profile_to: Path | None = None
    beats: list[infra.Beat] = field(default_factory=list)
    collector: infra.QueueCollector | None = None
    observations: list[Observation] = field(default_factory=list)
    unresolved: list[Arrival] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> list[Observation]:
        """Place the messages taken since the last call (and those not placeable before)."""
        assert self.collector is not None  # noqa: S101 - started before it is read
        found, self.unresolved = self.peer.resolve(self.unresolved + self.collector.take())
        self.observations.extend(found)
        return found

    def cpu_seconds(self) -> float:
        return sum(beat.cpu_seconds() for beat in self.beats)

    def alive(self) -> bool:
        return any(beat.alive() for beat in self.beats)


class Estimator:
    """How long setting up and loading N schedules takes: a fixed part plus a per-schedule part,
    the latter learnt as the run goes. Lanes are set up one after the other; they load together."""

    FIXED_S = {"setup": 0.5, "ready": 3.0}
    DEFAULT_PER_1K_S = {"setup": 0.3, "ready": 0.2}

    def __init__(self) -> None:
        self.per_1k: dict[tuple[str, str], float] = {}

    def setup_s(self, lanes: list[Lane], size: int) -> float:
        return sum(self._estimate(lane.peer.slug, "setup", size) for lane in lanes)

    def ready_s(self, lanes: list[Lane], size: int) -> float:
        return max(self._estimate(lane.peer.slug, "ready", size) for lane in lanes)

    def learn(self, slug: str, phase: str, seconds: float, size: int) -> None:
        if size >= 10_000:
            rate = max(0.0, seconds - self.FIXED_S[phase]) / (size / 1000)
            self.per_1k[(slug, phase)] = max(rate, self.per_1k.get((slug, phase), 0.0))

    def _estimate(self, slug: str, phase: str, size: int) -> float:
        rate = self.per_1k.get((slug, phase), self.DEFAULT_PER_1K_S[phase])
        return self.FIXED_S[phase] + size / 1000 * rate


def next_minute(after: float) -> datetime:
    return datetime.fromtimestamp(math.ceil(after / 60) * 60, tz=UTC)


def sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


# Phases shared by every trial -----------------------------------------------------------------


def _prepare(lanes: list[Lane], shape: Shape, estimator: Estimator) -> None:
    for lane in lanes:
        started = time.monotonic()
        lane.peer.reset()
        lane.peer.create(shape)
        lane.peer.analyze()
        seconds = time.monotonic() - started
        lane.result["setup_s"] = round(seconds, 1)
        estimator.learn(lane.peer.slug, "setup", seconds, shape.total)


def _start(lanes: list[Lane], workdir: Path, trial: str) -> None:
    for lane in lanes:
        lane.collector = infra.QueueCollector(lane.peer.broker_url)
        lane.collector.start()
        for number in range(lane.replicas):
            name = f"{trial}-{lane.peer.slug}-{number}"
            command = infra.beat_command(
                lane.peer.scheduler_class,
                pidfile=workdir / f"{name}.pid",
                profile_to=lane.profile_to if number == 0 else None,
            )
            lane.beats.append(
                infra.beat_start(command, env=lane.peer.process_env(), log=workdir / f"{name}.log")
            )
        lane.result["command"] = " ".join(command[command.index("celery") :])


def _wait_ready(lanes: list[Lane], deadline: float, estimator: Estimator, size: int) -> None:
    """Wait until every beat has loaded and gone quiet (or the deadline); record when."""
    started = time.monotonic()
    history: list[tuple[float, list[float]]] = []
    pending = {id(lane): lane for lane in lanes}
    while pending and time.time() < deadline:
        time.sleep(0.5)
        now = time.monotonic()
        history.append((now, [lane.cpu_seconds() for lane in lanes]))
        past = [sample for sample in history if sample[0] <= now - READY_QUIET_S]
        if not past or now - started < 3:
            continue
        then, cpu_then = past[-1]
        for index, lane in enumerate(lanes):
            share = (history[-1][1][index] - cpu_then[index]) / (now - then) / lane.replicas
            if id(lane) in pending and (share < READY_CPU_SHARE or not lane.alive()):
                seconds = now - started
                lane.result.update(ready_s=round(seconds, 1), rss_ready_mb=_rss_mb(lane))
                estimator.learn(lane.peer.slug, "ready", seconds, size)
                del pending[id(lane)]
    for lane in pending.values():
        lane.result.update(ready_s=None, rss_ready_mb=_rss_mb(lane))
        lane.result.setdefault("notes", []).append("still loading when the measurement started")


def _rss_mb(lane: Lane) -> float:
    return round(max(beat.rss_mb() for beat in lane.beats), 1)


# Other processes busier than this share of a core during a measurement are named in its notes.
OTHERS_NOTE_SHARE = 0.2


@dataclass
class Usage:
    """CPU used by the lanes' beats, by the servers, by the harness and by everything else on the
    machine over a window (it is shared: other work may run meanwhile)."""

    started: float
    lanes: list[float]
    servers: dict[str, float]
    harness: float
    machine: float

    @classmethod
    def now(cls, lanes: list[Lane]) -> "Usage":
        servers = infra.server_cpu_seconds()
        beats = [lane.cpu_seconds() for lane in lanes]
        return cls(
            time.time(), beats, servers, infra.own_cpu_seconds(), infra.machine_cpu_seconds()
        )

    def record(self, lanes: list[Lane]) -> None:
        end = Usage.now(lanes)
        wall = end.started - self.started
        servers = infra.server_cpu_delta(self.servers, end.servers)
        ours = sum(end.lanes) - sum(self.lanes) + sum(servers.values())
        ours += end.harness - self.harness
        others = max(0.0, end.machine - self.machine - ours)
        for index, lane in enumerate(lanes):
            seconds = end.lanes[index] - self.lanes[index]
            lane.result["cpu"] = {
                "window_s": round(wall, 1),
                "seconds": round(seconds, 2),
                "percent_of_core": round(100 * seconds / wall, 1),
            }
            lane.result["peak_rss_mb"] = round(max(beat.peak_rss_mb() for beat in lane.beats), 1)
            lane.result["servers_cpu_percent_of_core"] = {
                name: round(100 * used / wall, 1) for name, used in servers.items()
            }
            lane.result["others_cpu_percent_of_core"] = round(100 * others / wall, 1)
            if others / wall > OTHERS_NOTE_SHARE:
                lane.result.setdefault("notes", []).append(
                    f"other processes used {100 * others / wall:.0f}% of a core meanwhile"
                )


def _stop(lanes: list[Lane]) -> None:
    for lane in lanes:
        if lane.collector is not None:
            lane.collector.stop()
        timeout = 60.0 if lane.profile_to else infra.STOP_TIMEOUT_S
        for beat in lane.beats:
            if not beat.alive():
                lane.result.setdefault("notes", []).append(
                    f"a beat exited early ({beat.popen.returncode}): {beat.log_tail(600)}"
                )
            infra.process_stop(beat.popen, timeout=timeout)
            errors = beat.errors()
            if errors:
                lane.result.setdefault("notes", []).append(
                    f"its beat logged {len(errors)} error line(s), first: {errors[0][:300]}"
                )
        if lane.collector is not None:
            lane.resolve()
            if lane.collector.connection_errors:
                lane.result.setdefault("notes", []).append(
                    f"the collector lost Redis {lane.collector.connection_errors} time(s)"
                )
        if lane.unresolved:
            lane.result.setdefault("notes", []).append(
                f"{len(lane.unresolved)} messages could not be matched to a run"
            )


def _base_result(lane: Lane, spec: BurstSpec | IdleSpec, shape: Shape) -> None:
    lane.result.update(
        scenario=spec.scenario,
        peer=lane.peer.title,
        size=shape.count,
        pattern=shape.pattern,
        replicas=lane.replicas,
        load_average_at_start=[round(value, 2) for value in os.getloadavg()],
    )


# Bursts: schedules due at whole minutes ---------------------------------------------------------


def run_burst(
    spec: BurstSpec, lanes: list[Lane], estimator: Estimator, workdir: Path
) -> list[dict[str, Any]]:
    for lane in lanes:
        lane.replicas = spec.replicas.get(lane.peer.slug, 1)
    shape = _prepare_for_due(spec, lanes, estimator)
    first_due = shape.first_due
    due_times = [first_due + timedelta(minutes=k) for k in range(spec.due_minutes)]
    for lane in lanes:
        _base_result(lane, spec, shape)
    try:
        _start(lanes, workdir, spec.scenario)
        _wait_ready(lanes, first_due.timestamp() - 1, estimator, shape.total)
        sleep_until(first_due.timestamp())
        usage = Usage.now(lanes)
        editors = [_Editor(lane.peer, spec, shape, first_due) for lane in lanes if spec.edits]
        for editor in editors:
            editor.start()
        end = _observe(lanes, shape, due_times, spec, editors)
        usage.record(lanes)
    finally:
        _stop(lanes)
    for lane in lanes:
        _burst_result(lane, spec, shape, due_times, end, editors)
    return [lane.result for lane in lanes]


def _prepare_for_due(spec: BurstSpec, lanes: list[Lane], estimator: Estimator) -> Shape:
    """Set up schedules first due at the next whole minute that leaves time to set them up and
    load them; if setting up took longer than estimated, set up again for a later minute."""
    for _ in range(3):
        lead = (
            LEAD_MARGIN_S
            + estimator.setup_s(lanes, spec.size)
            + estimator.ready_s(lanes, spec.size)
        )
        first_due = next_minute(time.time() + lead)
        shape = Shape(spec.pattern, spec.size, first_due, idle=spec.edits)
        _prepare(lanes, shape, estimator)
        if time.time() + estimator.ready_s(lanes, spec.size) + 2 < first_due.timestamp():
            break
    return shape


def _observe(
    lanes: list[Lane],
    shape: Shape,
    due_times: list[datetime],
    spec: BurstSpec,
    editors: list["_Editor"],
) -> float:
    """Collect until every lane published every expected fire (then `settle_s` more), until the
    cap, or until every beat of a lane died. Returns the end time."""
    hard_stop = due_times[0].timestamp() + spec.cap_s
    progress = [Tally(shape, due_times) for _ in lanes]  # fed incrementally: cheap to keep
    done_at: float | None = None
    while time.time() < hard_stop:
        time.sleep(POLL_S)
        for lane, counted in zip(lanes, progress, strict=True):
            counted.add(sorted(lane.resolve(), key=lambda observation: observation.arrival))
        published = all(counted.published >= counted.expected for counted in progress)
        for editor in editors:
            if published:
                editor.burst_done.set()
        if done_at is None and published and not any(e.is_alive() for e in editors):
            done_at = time.time() + spec.settle_s + (5.0 if editors else 0.0)
        if done_at is not None and time.time() >= done_at:
            break
        if not all(lane.alive() for lane in lanes):
            break
    for editor in editors:
        editor.stop.set()
        editor.join()
    return time.time()


def _burst_result(
    lane: Lane,
    spec: BurstSpec,
    shape: Shape,
    due_times: list[datetime],
    end: float,
    editors: list["_Editor"],
) -> None:
    counted = tally(lane.observations, shape, due_times)
    lateness = counted.lateness_s()
    lane.result.update(
        due_times=[at.isoformat() for at in due_times],
        cap_s=spec.cap_s,
        observed_s=round(end - due_times[0].timestamp(), 1),
        expected=counted.expected,
        published=counted.published,
        published_fraction=round(counted.published / counted.expected, 4),
        missing=counted.expected - counted.published,
        duplicates=counted.duplicates,
        later_fires=counted.later,
        unexpected=counted.unexpected,
        examples=counted.examples,
        finished=counted.published == counted.expected,
        lateness_ms=summary_ms(lateness),
        lateness_ms_counting_unpublished=_censored(counted, shape, due_times, end),
        publish_rate_per_s=_round(counted.rate_per_s(from_due=True)),
        first_to_last_message_rate_per_s=_round(counted.rate_per_s(from_due=False)),
        own=lane.peer.own_report(due_times, list(range(shape.count, shape.total))),
    )
    if lane.result["own"].get("runs") and not lane.observations:
        lane.result.setdefault("notes", []).append(
            "the peer recorded fires but no message reached the collected lists"
        )
    if editors:
        editor = next(e for e in editors if e.peer is lane.peer)
        lane.result["edits"] = edit_effects(editor.edits, lane.observations) | {
            "errors": editor.errors
        }


def _censored(
    counted: Tally, shape: Shape, due_times: list[datetime], end: float
) -> dict[str, float] | None:
    """Lateness with every unpublished fire counted as late until the end of the observation: a
    lower bound of the true figures for a scheduler that did not finish."""
    if counted.published == counted.expected:
        return None
    lateness = counted.lateness_s()
    for at in due_times:
        missing = shape.expected_at(at) - counted.published_at(at.timestamp())
        lateness.extend([end - at.timestamp()] * missing)
    return summary_ms(lateness)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class _Editor(threading.Thread):
    """Edits one idle schedule a second (to fire every second), recording each commit time."""

    def __init__(self, peer: Peer, spec: BurstSpec, shape: Shape, first_due: datetime) -> None:
        super().__init__(name=f"editor {peer.slug}", daemon=True)
        self.peer = peer
        self.keys = list(range(shape.count, shape.total))
        self.start_at = first_due.timestamp() - 5
        self.soft_stop_at = first_due.timestamp() + spec.edits_for_s
        self.burst_done = threading.Event()
        self.stop = threading.Event()
        self.edits: list[tuple[int, float]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            for number, key in enumerate(self.keys):
                # One a second, each at another point of its second (golden-ratio steps): the
                # every-second schedule then waits 0..1 s for its next second, not always ~1 s.
                sleep_until(self.start_at + number + (number * 0.618) % 1)
                if self.stop.is_set() or (
                    time.time() >= self.soft_stop_at and self.burst_done.is_set()
                ):
                    return
                self._edit(key)
        finally:
            connections.close_all()

    def _edit(self, key: int) -> None:
        try:
            self.peer.edit(key)
        except Exception as error:  # recorded in the results; the run goes on
            self.errors.append(repr(error))
            return
        self.edits.append((key, time.time()))


# Idle: many schedules, none due --------------------------------------------------------------


def run_idle(
    spec: IdleSpec, lanes: list[Lane], estimator: Estimator, workdir: Path
) -> list[dict[str, Any]]:
    shape = Shape("idle", spec.size, datetime.now(tz=UTC))
    for lane in lanes:
        _base_result(lane, spec, shape)
    try:
        _prepare(lanes, shape, estimator)
        _start(lanes, workdir, spec.scenario)
        _wait_ready(lanes, time.time() + spec.ready_cap_s, estimator, shape.total)
        usage = Usage.now(lanes)
        time.sleep(spec.window_s)
        usage.record(lanes)
    finally:
        _stop(lanes)
    for lane in lanes:
        lane.result["messages"] = len(lane.observations)
    return [lane.result for lane in lanes]
