"""The folder of prometheus_client's multiprocess mode, for `celery worker`.

A prefork worker executes runs in pool processes, and Celery replaces a pool process that dies
(killed, out of memory) or has done its share. Counted in each process's memory, the counts of a
replaced process would be lost and its replacement's would start again from 0: the worker's
counters would go backwards. In multiprocess mode every process counts into files of its own in
one folder, which the main process reads and sums when it serves /metrics (apps.core.metrics),
the files of dead processes included.

prometheus_client chooses its mode when it is first imported, so the folder is set here, from
`workers/__init__.py`, before Django or Celery import it: `PROMETHEUS_MULTIPROC_DIR` when it is set
(one folder per worker: its files are removed at start, as those of a previous run would count
again), otherwise a new temporary folder, removed when the worker exits. Only `celery worker` is
changed: the scheduler and the other processes serve their own registry, and a process that
imported prometheus_client already (make dev's, whose worker runs in threads of the process, or
the tests') keeps its mode.
"""

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from pathlib import Path

FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_folder_ensure(
    *,
    argv: Sequence[str] = sys.argv,
    environ: MutableMapping[str, str] = os.environ,
    imported: bool | None = None,
) -> str | None:
    """Set up the multiprocess folder when this process is `celery worker` and prometheus_client
    is not imported yet; return the folder, or None when nothing was set up."""
    if imported is None:
        imported = "prometheus_client" in sys.modules
    if imported or not celery_worker_command(argv):
        return None
    folder = environ.get(FOLDER_VARIABLE)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)
        return folder
    folder = tempfile.mkdtemp(prefix="dts-worker-metrics-")
    environ[FOLDER_VARIABLE] = folder
    atexit.register(_folder_remove, folder, os.getpid())
    return folder


def celery_worker_command(argv: Sequence[str]) -> bool:
    """Whether `argv` is `celery … worker …` (or `python -m celery … worker …`)."""
    if not argv:
        return False
    program = Path(argv[0])
    is_celery = program.name == "celery" or program.parent.name == "celery"  # its __main__.py
    return is_celery and "worker" in argv[1:]


def _folder_remove(folder: str, owner: int) -> None:
    # Pool processes inherit the exit hooks; only the main process that made the folder removes it.
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)
