"""One real browser session (headless Debian Chromium driven by Playwright) against a live
server with real workers: sign in, upload, watch the bar reach 100 % without reloading,
cancel a second job, check the final states, and keep screenshots."""

from __future__ import annotations

import re

import pytest

from tests.conftest import OUTPUT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JOB_PAGE = re.compile(r".*/jobs/[0-9a-f-]{36}/$")


def csv_file(path, rows: int, extra_header: str = "", extra_value: str = "") -> str:
    with open(path, "w") as out:
        out.write("id,date,amount,currency,counterparty" + extra_header + "\n")
        for i in range(rows):
            amount = "oops" if i % 500 == 7 else f"{i % 900 + 1}.25"
            out.write(f"B{i},2026-04-{i % 28 + 1:02d},{amount},EUR,Vendor {i % 40}{extra_value}\n")
    return str(path)




def test_upload_watch_cancel_in_a_real_browser(chromium, live_server, start_workers, tmp_path):
    browser = chromium
    from django.contrib.auth import get_user_model

    from jobs.models import ProcessingJob, Project

    user = get_user_model().objects.create_user("alice", password="correct horse")
    project = Project.objects.create(id="field-audit", name="Field audit", created_by=user)
    project.members.add(user)
    start_workers(2)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

    # Playwright's wait_for_function evaluates its predicate with eval(), which Zenith's
    # Content-Security-Policy forbids in the page; the policy itself is checked page by page in
    # tests/hostile/test_deployment_and_clients.py.
    page = browser.new_page(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "correct horse")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Upload a CSV and watch it finish on its page, without a reload.
    page.goto(f"{live_server.url}/jobs/new/")
    page.select_option("select[name=project]", "field-audit")
    page.select_option("select[name=data_type]", "probe")
    page.set_input_files("input[name=file]", csv_file(tmp_path / "first.csv", 3000, ",sleep_ms", ",1"))
    page.click("button[value=preview]")  # how the file will be read, before anything is submitted
    page.wait_for_selector("#preview")
    assert "canonical" in page.inner_text("#preview") or "mapped" in page.inner_text("#preview")
    assert "first.csv" in page.inner_text("#staged-file")  # kept on the server: no second pick
    page.click("button[value=submit]")
    page.wait_for_url(JOB_PAGE)
    first_url = page.url
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function("document.getElementById('percent').textContent === '100.0%'", timeout=90_000)
    page.wait_for_function("document.getElementById('progress-card').dataset.finalized === 'true'",
                           timeout=30_000)
    assert page.evaluate("window.__notReloaded === true")
    assert page.inner_text("#status").strip().endswith("completed")
    assert page.inner_text("#failed") == "6"
    assert page.get_attribute("#bar", "aria-valuenow") == "100.0"
    page.wait_for_selector("#details svg.chart")  # the final tables and chart, swapped in without a reload
    assert page.evaluate("window.__notReloaded === true")
    assert "invalid_amount" in page.inner_text("#details")
    page.wait_for_selector("#retry-button", timeout=15_000)  # decided when the job ended, swapped in
    assert page.query_selector("#cancel-button") is None
    assert page.evaluate("window.__notReloaded === true")
    page.wait_for_timeout(500)  # let the bar's width transition end before the screenshot
    page.screenshot(path=str(OUTPUT_DIR / "job-page.png"), full_page=True)

    # A second, slower job: cancel it from its page.
    page.goto(f"{live_server.url}/jobs/new/")
    page.select_option("select[name=project]", "field-audit")
    page.select_option("select[name=data_type]", "probe")
    page.set_input_files("input[name=file]", csv_file(tmp_path / "second.csv", 4000, ",sleep_ms", ",8"))
    page.click("button[value=submit]")
    page.wait_for_url(JOB_PAGE)
    second_url = page.url
    page.wait_for_function("parseInt(document.getElementById('done-count').textContent.replace(/\\D/g, '')) > 0",
                           timeout=60_000)
    dashboard = browser.new_page(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    dashboard.context.add_cookies(page.context.cookies())
    dashboard.goto(f"{live_server.url}/")
    assert "probe" in dashboard.inner_text("#active-jobs")
    dashboard.evaluate("window.__notReloaded = true")
    second_row = "#job-" + second_url.rstrip("/").rsplit("/", 1)[1]
    dashboard.screenshot(path=str(OUTPUT_DIR / "dashboard.png"), full_page=True)
    page.click("#cancel-button")
    page.wait_for_selector("text=Job cancelled")
    page.wait_for_function("document.getElementById('progress-card').dataset.finalized === 'true'",
                           timeout=30_000)
    assert page.inner_text("#status").strip().endswith("cancelled")
    assert int(page.inner_text("#skipped").replace(",", "")) > 0
    # The dashboard row of the job that left the active set shows how it ended, icon included.
    dashboard.wait_for_function(f"document.querySelector('{second_row}').dataset.final === 'true'",
                                timeout=30_000)
    assert dashboard.text_content(f"{second_row} .status").strip() == "\u2298cancelled"
    assert dashboard.evaluate("window.__notReloaded === true")

    # The final states as the pages show them.
    page.goto(f"{live_server.url}/jobs/")
    listing = page.inner_text("main")
    assert "completed" in listing and "cancelled" in listing
    first = ProcessingJob.objects.get(id=first_url.rstrip("/").rsplit("/", 1)[1])
    second = ProcessingJob.objects.get(id=second_url.rstrip("/").rsplit("/", 1)[1])
    assert (first.status, first.items_processed, first.items_failed) == ("completed", 2994, 6)
    assert second.status == "cancelled" and second.completed_at is not None
    assert second.items_processed + second.items_failed + second.items_skipped == 4000

    narrow = browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)
    narrow.context.add_cookies(page.context.cookies())
    narrow.goto(first_url)
    narrow.screenshot(path=str(OUTPUT_DIR / "job-page-narrow.png"), full_page=True)
    assert narrow.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
