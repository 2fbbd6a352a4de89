"""The Prometheus metrics of a process without web pages (the relay, a worker, the scheduler): the
default registry, on a port of its own (the web serves /metrics itself). Among them
`dts_dependency_up` (apps.core.outages), which says while a backing service is away."""

import logging

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)


def metrics_serve(*, port: int, address: str, setting: str) -> bool:
    """Serve this process's metrics on http://`address`:`port`/metrics from a thread; port 0 serves
    none. A port that cannot be had (another worker on the host holds it) is logged once, naming
    `setting`, and the process goes on without: its metrics are never a reason to stop it.
    Returns whether the metrics are served."""
    if not port:
        return False
    try:
        start_http_server(port, addr=address)
    except OSError as problem:  # the port in use, or an address this host does not have
        logger.warning(
            "Metrics not served: cannot listen on %s:%d (%s); set %s to a free port, or 0",
            address,
            port,
            problem.strerror or problem,
            setting,
        )
        return False
    logger.info("Metrics served on http://%s:%d/metrics", address, port)
    return True
