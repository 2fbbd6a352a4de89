"""The deployment tools in tests (platform/tools/): running a command, the versions lib.sh pins,
and kubeconform with the strict Kubernetes schemas and any further schema locations."""

import os
import re
import subprocess
from pathlib import Path

from tests.processes import REPO

TOOLS = REPO / "platform" / "tools"
# kubeconform finds the CRD kinds' schemas in crd-schemas.sh's folder laid out so.
CRD_SCHEMA_LOCATION = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"


def run(
    *command: str | Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`command` with this environment and `env` besides; its result, whatever the exit code."""
    return subprocess.run(
        [str(part) for part in command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def pinned(name: str) -> str:
    """The version platform/tools/lib.sh pins for DTS_<NAME>_VERSION."""
    match = re.search(rf'DTS_{name}_VERSION:=([^}}"]+)', (TOOLS / "lib.sh").read_text())
    assert match, f"DTS_{name}_VERSION is not pinned in platform/tools/lib.sh"
    return match.group(1)


# The Kubernetes version the schemas describe, which helm renders for too.
KUBERNETES_VERSION = pinned("KUBERNETES_SCHEMA")


def kubeconform(
    tools: dict[str, str], manifest: Path, *schema_locations: str
) -> subprocess.CompletedProcess:
    """kubeconform -strict on `manifest`, with the Kubernetes schemas and `schema_locations` (a
    kind no location knows is an error)."""
    locations = [tools["kubernetes-schemas"], *schema_locations]
    return run(
        *(tools["kubeconform"], "-strict", "-summary", "-kubernetes-version", KUBERNETES_VERSION),
        *[argument for location in locations for argument in ("-schema-location", location)],
        manifest,
    )
