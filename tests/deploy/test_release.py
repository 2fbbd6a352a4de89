"""`make release` (platform/release.sh) against a registry of the test's own on loopback
(platform/docker/registry.sh, its storage in a temporary folder): what it pushes is pulled back by
tag and by digest, with the digests the release reported; the chart is pulled at the version; a
missing or bad VERSION, a dirty tree and a version released already are refused and push nothing.

The chart is the one at helm/dts (CHART in the environment points the release at another).
The image build takes a few minutes cold, seconds warm (test_image.py's note)."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.processes import REPO, free_port

PLATFORM = REPO / "platform"
RELEASE = PLATFORM / "release.sh"
REGISTRY_SCRIPT = PLATFORM / "docker" / "registry.sh"
VERSION = "0.0.1-release-test"
OVERWRITTEN_VERSION = "0.0.2-release-test"
NAMESPACE = "release-test"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
# Cold: the base image (mmdebstrap), the wheelhouse and docker build, and helm built from source.
pytestmark = pytest.mark.timeout(1500)


def run(
    *command: str | Path, env: dict[str, str], cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}:\n" + (result.stdout + result.stderr)[-4000:]
    )
    return result


@pytest.fixture(scope="module")
def helm() -> str:
    """The helm binary of the tools cache (built from the Go module proxy if missing: minutes)."""
    built = run(PLATFORM / "tools" / "helm.sh", env=dict(os.environ), timeout=900)
    return succeeded(built).stdout.strip()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a registry of this module's own: a free port, its blobs in a temporary
    folder; stopped at the end."""
    port = free_port()
    env = os.environ | {
        "DTS_REGISTRY_PORT": str(port),
        "DTS_SERVICES_DIR": str(tmp_path_factory.mktemp("services")),
    }
    succeeded(run(REGISTRY_SCRIPT, "start", env=env, timeout=300))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        succeeded(run(REGISTRY_SCRIPT, "stop", env=env))


@pytest.fixture(scope="module")
def release_env(
    docker_env: dict[str, str], registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """What the release needs besides VERSION: the test registry, the test's Python for the
    wheelhouse, a dist folder of its own. The tree may hold work not committed yet: releasing it
    is allowed here (as <commit>-dirty); test_dirty_tree_is_refused tests the refusal.
    At the end, the engine forgets the names the releases and pulls gave the image."""
    env = docker_env | {
        "REGISTRY": f"{registry}/{NAMESPACE}",
        "DTS_BUILD_PYTHON": sys.executable,
        "DTS_RELEASE_ALLOW_DIRTY": "1",
        "DIST": str(tmp_path_factory.mktemp("dist")),
    }
    yield env
    listed = run("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", env=env)
    names = [
        name
        for name in listed.stdout.split()
        if name.startswith(f"{registry}/")
        or name in {f"dts:{VERSION}", f"dts:{OVERWRITTEN_VERSION}"}
    ]
    if names:
        run("docker", "image", "rm", *names, env=env)


def release(env: dict[str, str], version: str, **extra: str) -> subprocess.CompletedProcess:
    return run(RELEASE, env=env | {"VERSION": version, **extra}, timeout=1400)


def record(env: dict[str, str], version: str) -> dict[str, str]:
    """The release's record, $DIST/release-<version>.env."""
    lines = (Path(env["DIST"]) / f"release-{version}.env").read_text().splitlines()
    return {key: value.strip('"') for key, value in (line.split("=", 1) for line in lines)}


@pytest.fixture(scope="module")
def released(release_env: dict[str, str], helm: str) -> dict[str, str]:
    """The record of a release of VERSION."""
    result = succeeded(release(release_env, VERSION))
    # The summary it prints is its record.
    assert (Path(release_env["DIST"]) / f"release-{VERSION}.env").read_text() in result.stdout
    return record(release_env, VERSION)


def registry_digest(registry: str, repository: str, reference: str) -> str | None:
    """Docker-Content-Digest of the manifest the registry serves for repository:reference."""
    response = httpx.get(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def registry_repositories(registry: str) -> list[str]:
    response = httpx.get(f"http://{registry}/v2/_catalog", timeout=10)
    response.raise_for_status()
    return response.json()["repositories"] or []


def head_commit(env: dict[str, str]) -> str:
    commit = succeeded(run("git", "rev-parse", "--short", "HEAD", env=env)).stdout.strip()
    dirty = succeeded(run("git", "status", "--porcelain", env=env)).stdout.strip()
    return f"{commit}-dirty" if dirty else commit


def test_image_is_tagged_with_version_and_commit_and_registry_serves_the_reported_digest(
    released: dict[str, str], registry: str, release_env: dict[str, str]
):
    assert released["VERSION"] == VERSION
    assert released["COMMIT"] == head_commit(release_env)
    assert released["IMAGE"] == f"{registry}/{NAMESPACE}/dts"
    assert released["IMAGE_TAGS"].split() == [VERSION, released["COMMIT"]]
    for tag in (VERSION, released["COMMIT"]):
        assert registry_digest(registry, f"{NAMESPACE}/dts", tag) == released["IMAGE_DIGEST"]


def test_pulled_image_by_tag_and_by_digest_is_the_built_one_with_the_reported_digest(
    released: dict[str, str], release_env: dict[str, str]
):
    image, digest = released["IMAGE"], released["IMAGE_DIGEST"]
    by_tag, by_digest = f"{image}:{VERSION}", f"{image}@{digest}"
    built_id = succeeded(
        run("docker", "image", "inspect", "--format", "{{.Id}}", f"dts:{VERSION}", env=release_env)
    ).stdout.strip()
    # Every local name in the registry's repository goes, so that what follows comes from a pull.
    # (Untagging the last tag of a repository drops its digest name too.)
    succeeded(
        run("docker", "image", "rm", by_tag, f"{image}:{released['COMMIT']}", env=release_env)
    )
    run("docker", "image", "rm", by_digest, env=release_env)
    assert run("docker", "image", "inspect", by_digest, env=release_env).returncode != 0

    for reference in (by_tag, by_digest):
        succeeded(run("docker", "pull", reference, env=release_env))
        inspected = json.loads(
            succeeded(run("docker", "image", "inspect", reference, env=release_env)).stdout
        )[0]
        assert inspected["Id"] == built_id
        # Other registries' names (of earlier sessions, on other ports) may be there too.
        ours = [name for name in inspected["RepoDigests"] if name.startswith(f"{image}@")]
        assert ours == [by_digest]


def test_chart_is_pushed_at_the_version_and_pulled_back_with_the_reported_digest(
    released: dict[str, str], registry: str, release_env: dict[str, str], helm: str, tmp_path: Path
):
    assert released["CHART"] == f"oci://{registry}/{NAMESPACE}/charts/dts"
    assert registry_digest(registry, f"{NAMESPACE}/charts/dts", VERSION) == released["CHART_DIGEST"]
    pulled = succeeded(
        run(
            *(helm, "pull", released["CHART"], "--version", VERSION, "--plain-http"),
            *("--destination", tmp_path),
            env=release_env,
        )
    )
    assert f"Digest: {released['CHART_DIGEST']}" in pulled.stdout + pulled.stderr
    shown = succeeded(run(helm, "show", "chart", tmp_path / f"dts-{VERSION}.tgz", env=release_env))
    assert f"\nversion: {VERSION}\n" in f"\n{shown.stdout}"
    assert f"\nappVersion: {VERSION}\n" in f"\n{shown.stdout}"
    # Its default image is the one released beside it, by digest.
    values = succeeded(
        run(helm, "show", "values", tmp_path / f"dts-{VERSION}.tgz", env=release_env)
    )
    assert yaml.safe_load(values.stdout)["image"] == {
        **yaml.safe_load((REPO / "helm" / "dts" / "values.yaml").read_text())["image"],
        "repository": released["IMAGE"],
        "digest": released["IMAGE_DIGEST"],
    }


def test_second_release_of_a_version_is_refused_and_pushes_nothing(
    released: dict[str, str], registry: str, release_env: dict[str, str]
):
    before = {
        repository: httpx.get(f"http://{registry}/v2/{repository}/tags/list").json()
        for repository in (f"{NAMESPACE}/dts", f"{NAMESPACE}/charts/dts")
    }

    again = release(release_env, VERSION)

    assert again.returncode != 0
    assert f"{released['IMAGE']}:{VERSION} is released already" in again.stderr
    assert "DTS_RELEASE_OVERWRITE=1" in again.stderr
    for repository, tags in before.items():
        assert httpx.get(f"http://{registry}/v2/{repository}/tags/list").json() == tags
    assert registry_digest(registry, f"{NAMESPACE}/dts", VERSION) == released["IMAGE_DIGEST"]
    assert registry_digest(registry, f"{NAMESPACE}/charts/dts", VERSION) == released["CHART_DIGEST"]


def test_a_released_chart_alone_also_blocks_the_version(
    registry: str, release_env: dict[str, str], helm: str, tmp_path: Path
):
    # As if a release had died between the image and the chart, or the image were deleted.
    version = "0.0.3-release-test"
    created = tmp_path / "dts"
    succeeded(run(helm, "create", created, env=release_env))
    packaged = succeeded(
        run(helm, "package", created, "--version", version, "-d", tmp_path, env=release_env)
    )
    package = packaged.stdout.strip().rsplit(": ", 1)[1]
    charts = f"oci://{registry}/{NAMESPACE}/charts"
    succeeded(run(helm, "push", package, charts, "--plain-http", env=release_env))

    refused = release(release_env, version)

    assert refused.returncode != 0
    assert f"{charts}/dts:{version} is released already" in refused.stderr
    assert registry_digest(registry, f"{NAMESPACE}/dts", version) is None


def test_overwrite_pushes_over_a_released_version(
    registry: str, release_env: dict[str, str], helm: str
):
    succeeded(release(release_env, OVERWRITTEN_VERSION))
    first = record(release_env, OVERWRITTEN_VERSION)

    forced = succeeded(release(release_env, OVERWRITTEN_VERSION, DTS_RELEASE_OVERWRITE="1"))

    second = record(release_env, OVERWRITTEN_VERSION)
    assert "released already" not in forced.stderr
    # Nothing changed in between: the same image, so the same digest; the registry serves it.
    assert second["IMAGE_DIGEST"] == first["IMAGE_DIGEST"]
    assert (
        registry_digest(registry, f"{NAMESPACE}/dts", OVERWRITTEN_VERSION)
        == (second["IMAGE_DIGEST"])
    )
    assert (
        registry_digest(registry, f"{NAMESPACE}/charts/dts", OVERWRITTEN_VERSION)
        == (second["CHART_DIGEST"])
    )


@pytest.mark.parametrize(
    ("version", "complaint"),
    [
        ("", "VERSION is required: make release VERSION=1.2.3"),
        ("v1.2.3", "VERSION 'v1.2.3' is not a version like 1.2.3"),
        ("1.2", "VERSION '1.2' is not a version like 1.2.3"),
        ("01.2.3", "VERSION '01.2.3' is not a version like 1.2.3"),
        ("1.2.3+build.4", "VERSION '1.2.3+build.4' is not a version like 1.2.3"),
        ("1.2.3 ", "VERSION '1.2.3 ' is not a version like 1.2.3"),
    ],
)
def test_missing_or_bad_version_fails_with_a_clear_message_and_pushes_nothing(
    registry: str, release_env: dict[str, str], version: str, complaint: str
):
    env = release_env | {"REGISTRY": f"{registry}/refused"}

    result = release(env, version)

    assert result.returncode != 0
    assert complaint in result.stderr
    assert not [name for name in registry_repositories(registry) if name.startswith("refused/")]


def test_make_release_without_version_says_what_to_run(registry: str, release_env: dict[str, str]):
    # -o: the virtualenv's freshness is not what this test is about; the script stops first.
    # Nor the make flags of a `make deploy-check` this may run under.
    env = {
        key: value
        for key, value in release_env.items()
        if key not in {"VERSION", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    }
    result = run(
        "make",
        "--no-print-directory",
        "-o",
        ".venv/.installed",
        "release",
        f"REGISTRY={registry}/refused",
        env=env,
    )
    assert result.returncode != 0
    assert "VERSION is required: make release VERSION=1.2.3" in result.stderr
    assert not [name for name in registry_repositories(registry) if name.startswith("refused/")]


@pytest.mark.parametrize("change", ["untracked file", "modified file"])
def test_dirty_tree_is_refused(
    registry: str, release_env: dict[str, str], tmp_path: Path, change: str
):
    # A copy of platform/ in a repository of its own: the script releases the tree it lives in.
    copy = tmp_path / "clone"
    shutil.copytree(PLATFORM, copy / "platform", ignore=shutil.ignore_patterns("__pycache__"))
    git = ("git", "-c", "user.name=release test", "-c", "user.email=release-test@invalid")
    for command in (("init", "--quiet"), ("add", "."), ("commit", "--quiet", "-m", "copy")):
        succeeded(run(*git, *command, env=release_env, cwd=copy))
    if change == "untracked file":
        (copy / "notes.txt").write_text("not committed\n")
    else:
        with (copy / "platform" / "docker" / "README.md").open("a") as readme:
            readme.write("not committed\n")
    env = release_env | {"REGISTRY": f"{registry}/refused"}
    env.pop("DTS_RELEASE_ALLOW_DIRTY")

    result = run(copy / "platform" / "release.sh", env=env | {"VERSION": "1.2.3"}, cwd=copy)

    assert result.returncode != 0
    assert "the work tree has uncommitted changes" in result.stderr
    assert "DTS_RELEASE_ALLOW_DIRTY=1" in result.stderr
    assert not [name for name in registry_repositories(registry) if name.startswith("refused/")]
