"""Starting and stopping backing services from tests, through platform/local/*.sh, on the instance
a test means: the one its processes use (found by the port they connect to, whichever checkout
started it), or a private one in a folder and on ports of its own.

A test that stops "kafka" by running this checkout's script would stop nothing when another
checkout's broker serves the port, and its start would try to launch a second broker: the scripts
refuse both now, and tests name the instance instead (DTS_SERVICES_DIR and the port variables).
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from django.conf import settings
from django.db import connection

from tests.processes import REPO, free_port

SCRIPTS = REPO / "platform" / "local"
# As in lib.sh: machine-wide, as ports are.
PORTS_DIR = Path(os.environ.get("DTS_PORTS_DIR") or Path(tempfile.gettempdir()) / "dts-services")
# The environment variable of each service's port in platform/local/lib.sh.
PORT_VARIABLES = {
    "postgres": "DTS_POSTGRES_PORT",
    "redis": "DTS_REDIS_PORT",
    "kafka": "DTS_KAFKA_PORT",
    "elasticsearch": "DTS_ES_PORT",
}


@dataclass
class LocalService:
    """One instance of a platform/local service: its folder (DTS_SERVICES_DIR) and its ports."""

    name: str
    services_dir: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.ports[PORT_VARIABLES[self.name]]

    @property
    def folder(self) -> Path:
        """Its .services/<name> folder: data, logs, pid file."""
        return self.services_dir / self.name

    def run(self, action: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"DTS_SERVICES_DIR": str(self.services_dir)}
        env |= {variable: str(port) for variable, port in self.ports.items()}
        return subprocess.run(
            ["bash", str(SCRIPTS / f"{self.name}.sh"), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        self._check(self.run("start"))

    def stop(self) -> None:
        self._check(self.run("stop"))

    def _check(self, done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise AssertionError(
                f"{self.name}.sh {done.args[-1]} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stopped inside the block; started again after it, even when the block fails."""
        self.stop()
        try:
            yield
        finally:
            self.start()


def port_in_use(name: str) -> int:
    """The port of the `name` service this test session's processes connect to."""
    if name == "postgres":
        return int(connection.settings_dict["PORT"])
    if name == "redis":
        return int(urlsplit(settings.CELERY_BROKER_URL).port or 6379)
    if name == "kafka":
        return int(settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0].rsplit(":", 1)[1])
    if name == "elasticsearch":
        return int(urlsplit(settings.ELASTICSEARCH_URL).port or 9200)
    raise ValueError(f"no service {name!r}")


def service_in_use(name: str) -> LocalService:
    """The instance of `name` that serves the port the tests use, whichever folder started it."""
    port = port_in_use(name)
    pid = _listener(port)
    if pid is None:
        raise AssertionError(f"nothing listens on 127.0.0.1:{port} for {name}: start it first")
    folder = _service_folder(pid, name, port)
    if folder is None:
        raise AssertionError(
            f"{name} on 127.0.0.1:{port} (pid {pid}) has no record of its folder in {PORTS_DIR} "
            f"and is not this checkout's: start it with platform/local/{name}.sh, so that tests "
            "can control it"
        )
    ports = {PORT_VARIABLES[name]: port}
    if name == "kafka":
        ports["DTS_KAFKA_CONTROLLER_PORT"] = _kafka_controller_port(folder)
    if name == "elasticsearch":
        ports["DTS_ES_TRANSPORT_PORT"] = _configured_port(
            folder / "config" / "elasticsearch.yml", r"^transport\.port: (\d+)"
        )
    return LocalService(name, folder.parent, ports)


def service(name: str, action: str) -> None:
    """Start or stop the instance of `name` that the tests use (another checkout's, if it serves
    their port), never a second one."""
    getattr(instance_of(name), action)()


# The instances found so far: once one is stopped, no listening port names its folder.
_instances: dict[str, LocalService] = {}


def instance_of(name: str) -> LocalService:
    if name not in _instances or port_in_use(name) in _listening_ports():
        _instances[name] = service_in_use(name)
    return _instances[name]


def _listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


@contextlib.contextmanager
def restored(name: str) -> Iterator[None]:
    """The instance of `name` in use is started again at the end, whatever the test did to it."""
    instance = instance_of(name)
    try:
        yield
    finally:
        instance.start()


def _listener(port: int) -> int | None:
    for listening in psutil.net_connections(kind="tcp"):
        if listening.status == psutil.CONN_LISTEN and listening.laddr.port == port:
            return listening.pid
    return None


def _service_folder(pid: int, name: str, port: int) -> Path | None:
    """The .services/<name> folder of the server `pid` on `port`: the one the scripts recorded
    for the port (platform/local/lib.sh, port_record), or this checkout's if its pid file names
    `pid` (a server started before the scripts kept records)."""
    candidates = [(REPO / ".services" / name, None)]
    with contextlib.suppress(OSError, ValueError):
        folder, pid_file = (PORTS_DIR / str(port)).read_text().splitlines()[:2]
        candidates.insert(0, (Path(folder), Path(pid_file)))
    for folder, pid_file in candidates:
        pid_file = pid_file or folder / (
            "data/postmaster.pid" if name == "postgres" else f"{name}.pid"
        )
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(pid_file.read_text().split()[0]) == pid:
                return folder
    return None


def _kafka_controller_port(folder: Path) -> int:
    return _configured_port(
        folder / "server.properties", r"^controller\.quorum\.voters=\d+@[^:]+:(\d+)"
    )


def _configured_port(file: Path, pattern: str) -> int:
    found = re.search(pattern, file.read_text(), re.MULTILINE)
    if found is None:
        raise AssertionError(f"no port matching {pattern!r} in {file}")
    return int(found.group(1))


@contextlib.contextmanager
def private_service(name: str, *, start: bool = False) -> Iterator[LocalService]:
    """A private instance of `name` in a temporary folder, on free ports, not started unless
    `start`; stopped and removed at the end."""
    services_dir = Path(tempfile.mkdtemp(prefix=f"dts-{name}-"))
    ports = {PORT_VARIABLES[name]: free_port()}
    if name == "kafka":
        ports["DTS_KAFKA_CONTROLLER_PORT"] = free_port()
    service = LocalService(name, services_dir, ports)
    try:
        if start:
            service.start()
        yield service
    finally:
        service.run("stop", timeout=90)
        shutil.rmtree(services_dir, ignore_errors=True)
