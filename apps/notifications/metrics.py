"""The notifier's series, from the scheduler processes that send deliveries."""

from django.conf import settings
from prometheus_client import Counter

ATTEMPTS = Counter(
    "dts_webhook_attempts",
    "Webhook delivery attempts, by outcome: delivered, retrying (failed, tried again later), "
    "failed (given up)",
    ["outcome"],
)


def delivery_record(outcome: str) -> None:
    if settings.DTS_METRICS_ENABLED:
        ATTEMPTS.labels(outcome).inc()
