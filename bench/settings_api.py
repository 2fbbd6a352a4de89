"""The API benchmark's server: production settings, plus the plain views it compares against."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
