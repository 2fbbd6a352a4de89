"""Where `dts login` keeps the server's address and the token: a JSON file readable by its owner
only, in the user's config folder (or DTS_CONFIG_DIR). DTS_URL and DTS_TOKEN override it."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

FILE_NAME = "config.json"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str


class NotLoggedIn(Exception):
    pass


def config_path() -> Path:
    folder = os.environ.get("DTS_CONFIG_DIR") or click.get_app_dir("dts")
    return Path(folder) / FILE_NAME


def settings_load() -> Settings:
    stored: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise NotLoggedIn(f"{path} cannot be read ({error}); run `dts login` again.") from error
    url = os.environ.get("DTS_URL") or stored.get("url")
    token = os.environ.get("DTS_TOKEN") or stored.get("token")
    if not url or not token:
        raise NotLoggedIn("Not logged in: run `dts login --url https://dts.example.com`.")
    return Settings(url=url.rstrip("/"), token=token)


def settings_save(settings: Settings) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with mode 600 before the token is written, so it is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(descriptor, "w") as output:
        json.dump({"url": settings.url, "token": settings.token}, output)
    return path
