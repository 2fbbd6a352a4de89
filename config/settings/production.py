"""Production: every secret comes from the environment, and unsafe values refuse to start."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    DTS_TRUSTED_PROXIES,
    cache_settings,
    channel_layer_settings,
    database_settings,
    env,
)

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
DEBUG = False

# No defaults: a missing value stops the process with environ's "Set the ... environment variable".
SECRET_KEY = env("DJANGO_SECRET_KEY")
# What `check --deploy` would only warn about (security.W009) stops the process here.
_secret_key_faults = [
    fault
    for fault, present in [
        (
            f"is shorter than {SECRET_KEY_MIN_LENGTH} characters",
            len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH,
        ),
        (
            f"has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters",
            len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS,
        ),
        (
            f"starts with {SECRET_KEY_INSECURE_PREFIX!r}, as the keys Django generates for "
            "development do",
            SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX),
        ),
    ]
    if present
]
if _secret_key_faults:
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY {' and '.join(_secret_key_faults)}: it must be at least "
        f"{SECRET_KEY_MIN_LENGTH} characters long, random, and not Django's development key "
        "(make one with: python -c 'from django.core.management.utils import "
        "get_random_secret_key; print(get_random_secret_key())')."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": database_settings(env.db("DATABASE_URL"))}
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CACHES = cache_settings(env("DTS_CACHE_URL"))
DTS_LIVE_REDIS_URL = env("DTS_LIVE_REDIS_URL")
CHANNEL_LAYERS = channel_layer_settings(DTS_LIVE_REDIS_URL)

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# X-Forwarded-Proto says the request came over HTTPS only when a proxy of ours wrote it: trusted
# only with DTS_TRUSTED_PROXIES (base.py), else a client could claim HTTPS for plain HTTP.
if DTS_TRUSTED_PROXIES > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
