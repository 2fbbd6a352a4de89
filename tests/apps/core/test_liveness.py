import os
from pathlib import Path

import pytest

from apps.core import liveness
from apps.core.liveness import Liveness


def test_beat_creates_the_file_and_its_folder(tmp_path: Path):
    heartbeat = tmp_path / "dts" / "heartbeat"
    Liveness(str(heartbeat)).beat()
    assert heartbeat.exists()


def test_beat_touches_at_most_once_a_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    heartbeat = tmp_path / "heartbeat"
    clock = [1000.0]
    monkeypatch.setattr(liveness.time, "monotonic", lambda: clock[0])
    sign = Liveness(str(heartbeat))
    sign.beat()
    os.utime(heartbeat, (0, 0))
    clock[0] += 0.5
    sign.beat()
    assert heartbeat.stat().st_mtime == 0
    clock[0] += 0.6
    sign.beat()
    assert heartbeat.stat().st_mtime > 0


def test_no_file_is_set_by_default(settings, tmp_path: Path):
    settings.DTS_HEARTBEAT_FILE = ""
    sign = Liveness()
    sign.beat()
    assert sign.path is None


def test_a_file_that_cannot_be_touched_is_logged_once(tmp_path: Path, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    sign = Liveness(str(blocked / "heartbeat"))  # its folder is a file
    sign.beat()
    sign.touched_at = float("-inf")
    sign.beat()
    assert [record.getMessage()[:30] for record in caplog.records] == [
        "Cannot touch the heartbeat fil"
    ]
