"""The SSRF guard: a webhook's URL is refused when it could reach this machine or the network
dts runs in, unless the operator allows it."""

import pytest

from apps.core.exceptions import ValidationFailed
from apps.notifications.addresses import webhook_url_check


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "https://"),
        ("hooks.example.com/dts", "https://"),
        ("https:///dts", "no host"),
        ("https://hooks.example.com:99999/", "not a URL"),
        ("https://user:pass@hooks.example.com/", "credentials"),
        ("http://127.0.0.1:5432/", "loopback"),
        ("http://127.1.2.3/", "loopback"),
        ("http://[::1]:6379/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://localhost:8000/", "this machine"),
        ("http://api.localhost/", "this machine"),
        ("http://10.0.0.7/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "private"),
        ("http://100.64.0.1/", "not a public"),
        ("http://224.0.0.1/", "not a public"),
        ("https://" + "a" * 2000 + ".com/", "longer than"),
        ("https://" + "ä" * 70 + ".com/", "not valid"),
    ],
)
def test_a_url_that_is_no_public_webhook_is_refused_naming_the_url(url, reason):
    with pytest.raises(ValidationFailed) as refused:
        webhook_url_check(url)

    assert refused.value.field == "url"
    assert reason in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hooks/dts",
        "https://[2606:4700::6810:85e5]/hooks",
        "https://hooks.unresolvable.invalid/dts",  # resolved again, and checked, at each attempt
    ],
)
def test_a_public_address_or_a_name_that_does_not_resolve_yet_is_accepted(url):
    webhook_url_check(url)


def test_an_operator_may_allow_private_addresses(settings):
    settings.DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True

    for url in ("http://127.0.0.1:8080/", "http://localhost/", "http://10.0.0.7/"):
        webhook_url_check(url)
    with pytest.raises(ValidationFailed):
        webhook_url_check("ftp://10.0.0.7/")
