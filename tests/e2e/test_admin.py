"""The admin's schedule form in Chromium: the description and next fire times as the timing is
typed, before saving, and a refused value's reason under its field."""

import re

import pytest
from playwright.sync_api import expect

from apps.schedules.models import Schedule
from tests.e2e.conftest import ARTIFACTS, TIMEOUT_MS
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_page(browser, web):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{web.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    yield page
    context.close()


def test_the_schedule_form_describes_the_timing_and_its_next_fires_as_it_is_typed(admin_page, web):
    JobFactory(name="nightly", task_type="dts.noop", args={})
    page = admin_page
    page.goto(f"{web.url}/admin/schedules/schedule/add/")
    preview = page.locator(".field-preview .readonly")
    expect(preview).to_have_text("Shown as the timing is typed.")

    page.select_option("#id_kind", "cron")
    page.fill("#id_timezone", "Europe/Paris")
    page.fill("#id_cron_expression", "0 9 * * 1-5")

    expect(preview.locator(".timing-preview-description")).to_have_text(
        "At 09:00, Monday through Friday, Europe/Paris"
    )
    fires = preview.locator(".timing-preview-fires li")
    expect(fires).to_have_count(10)
    for text in fires.all_inner_texts():
        assert re.match(r"(Mon|Tue|Wed|Thu|Fri), \d\d/\d\d/\d{4}, 09:00:00 CES?T \(", text), text
    page.screenshot(path=ARTIFACTS / "admin-schedule-preview.png", full_page=True)

    page.fill("#id_cron_expression", "61 9 * * 1-5")

    refusal = page.locator(".field-cron_expression .timing-preview-error")
    expect(refusal).to_contain_text("61")
    expect(preview).to_have_text("None: the schedule would be refused.")
    page.screenshot(path=ARTIFACTS / "admin-schedule-refused.png", full_page=True)

    page.fill("#id_cron_expression", "*/15 * * * *")

    expect(refusal).to_have_count(0)
    expect(preview.locator(".timing-preview-description")).to_have_text(
        "Every 15 minutes, Europe/Paris"
    )
    assert not Schedule.objects.exists()  # nothing is saved by looking
