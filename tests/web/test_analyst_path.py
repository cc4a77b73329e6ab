"""An analyst's whole path in a real browser (headless Debian Chromium driven by Playwright)
against a live server with real workers: upload a ledger and its bank statement, screen the
ledger for red flags and reconcile the statement, open the reconciliation view, filter the
findings and review three of them, open a transaction and the ones similar to it, and download
the reviewed findings. Every page runs under Zenith's Content-Security-Policy (no violation
may reach the console) and is saved as a screenshot in the test output directory
(tests/conftest.py OUTPUT_DIR: var/test-output/ by default), `analyst-*.png`."""

from __future__ import annotations

import csv
import io
import re

import pytest

from jobs.management import sample_data
from tests.conftest import OUTPUT_DIR, wait_for_job
from tests.web.test_browser import JOB_PAGE

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEDGER_ITEMS = 800




def _shot(page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUTPUT_DIR / f"analyst-{name}.png"), full_page=True)


def _upload(page, base: str, path, data_type: str, *, preview: bool = False) -> str:
    """Uploads a file through the upload page and waits, on its job page, for the job to end."""
    page.goto(f"{base}/jobs/new/")
    page.select_option("select[name=project]", "ledger-review")
    page.select_option("select[name=data_type]", data_type)
    page.set_input_files("input[name=file]", str(path))
    if preview:
        page.click("button[value=preview]")
        page.wait_for_selector("#preview")
        _shot(page, "01-upload-preview")
    page.click("button[value=submit]")
    page.wait_for_url(JOB_PAGE)
    page.wait_for_selector("#finished-note", state="visible", timeout=120_000)
    page.reload()  # the finished page as a reader arriving later sees it
    return page.url.rstrip("/").rsplit("/", 1)[1]


def test_the_analyst_path_in_a_real_browser(chromium, live_server, start_workers, tmp_path):
    from django.contrib.auth import get_user_model

    from jobs.models import Finding, ProcessingJob, Project, StatementMatch, Transaction
    from jobs.services import submit_project_transactions

    user = get_user_model().objects.create_user("dana", password="correct horse")
    project = Project.objects.create(id="ledger-review", name="Ledger review", created_by=user)
    project.members.add(user, through_defaults={"role": "analyst"})
    records, statement, _ = sample_data.transaction_sample(LEDGER_ITEMS, seed=11)
    ledger_path, statement_path = tmp_path / "ledger-2025.csv", tmp_path / "bank-statement-2025.csv"
    sample_data.write(ledger_path, records, fields=sample_data.FIELDS_BY_ROLE["transactions"])
    sample_data.write(statement_path, statement, fields=sample_data.FIELDS_BY_ROLE["statement"])
    start_workers(2)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

    violations: list[tuple[str, str]] = []
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", lambda message: violations.append((page.url, message.text))
            if "Content Security Policy" in message.text else None)
    page.on("dialog", lambda dialog: dialog.accept())
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", "correct horse")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")

    # 1. The ledger, stored; its page says how the file was read, in tables and sentences.
    ledger_id = _upload(page, base, ledger_path, "transaction", preview=True)
    reading = page.inner_text("#import-details")
    assert "Read as delimited text (CSV), encoded in UTF-8, with fields separated by commas." in reading
    assert "['" not in reading and "{'" not in page.inner_text("#summary")
    assert "transactions stored." in page.inner_text("#summary")
    _shot(page, "02-ledger-job")
    page.locator("#import-details").screenshot(path=str(OUTPUT_DIR / "analyst-02b-how-the-file-was-read.png"))

    # 2. The statement, reconciled against the stored ledger; 3. the ledger screened.
    reconciliation_id = _upload(page, base, statement_path, "reconciliation")
    assert "statement lines matched a ledger row" in page.inner_text("#summary")
    analysis_id = _upload(page, base, ledger_path, "analysis")
    for chart in ("Findings per", "Distribution of amounts", "Benford's law, first digit"):
        assert page.locator("#analysis-charts svg title", has_text=chart).count() == 1, chart
    _shot(page, "03-analysis-job")
    page.locator("#analysis-charts").screenshot(path=str(OUTPUT_DIR / "analyst-03b-analysis-charts.png"))

    # 4. The reconciliation view, from the job's page, by outcome.
    page.goto(f"{base}/jobs/{reconciliation_id}/")
    page.click("text=Reconciliation by outcome")
    page.wait_for_selector("#reconciliation-list")
    job = ProcessingJob.objects.get(id=reconciliation_id)
    matched = job.summary["outcomes"]["matched"]
    assert f"{matched:,}" in page.inner_text("#tab-matched")
    first_line = StatementMatch.objects.filter(job=job, outcome="matched").order_by("item_index").first()
    assert first_line.line_id in page.inner_text("#reconciliation-list")
    _shot(page, "04-reconciliation-matched")
    page.click("#tab-ambiguous")
    page.wait_for_url(re.compile(r".*show=ambiguous$"))
    if job.summary["outcomes"]["ambiguous"]:
        assert page.locator(".compare caption").count() >= 1  # each line with its candidates side by side
    _shot(page, "05-reconciliation-ambiguous")
    page.click("#tab-unmatched")
    page.wait_for_url(re.compile(r".*show=unmatched$"))
    _shot(page, "06-reconciliation-unmatched-lines")
    page.focus("#tab-ledger")  # the tabs are links: reachable and followed with the keyboard
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*show=ledger$"))
    assert job.summary["ledger_unmatched_sample"][0] in page.inner_text("#reconciliation-list")
    _shot(page, "07-reconciliation-unmatched-ledger")

    # 5. Find-similar needs an embedding job over the stored transactions (the pages have no
    # form for a job without a file): submitted here, run by the workers.
    embedding = submit_project_transactions(project=project, data_type="embedding", options={"source": "project"})
    wait_for_job(embedding.id, timeout=120)

    # 6. A transaction with findings, from the reconciliation view: values, provenance, the
    # findings and the statement line that mention it, and the similar ones.
    flagged = set(Finding.objects.filter(job_id=analysis_id).values_list("external_id", flat=True))
    target = (StatementMatch.objects.filter(job=job, outcome="matched", matched_external_id__in=flagged)
              .order_by("item_index").first())
    page.goto(f"{base}/jobs/{reconciliation_id}/reconciliation/?show=matched")
    while page.locator(f"#reconciliation-list a:text-is('{target.matched_external_id}')").count() == 0:
        page.click("a[rel=next]")
        page.wait_for_load_state()
    page.click(f"#reconciliation-list a:text-is('{target.matched_external_id}')")
    page.wait_for_selector("#provenance")
    transaction = Transaction.objects.get(project=project, external_id=target.matched_external_id)
    ledger = ProcessingJob.objects.get(id=ledger_id)
    assert page.inner_text("#checksum").strip() == ledger.input_checksum
    assert f"record {transaction.item_index + 1:,} of {ledger.total_items:,}" in page.inner_text("#record-number")
    where = page.inner_text("#file-line").strip()
    if where.startswith("line "):  # the fast path read its batch: the line is exact
        line = int(where.removeprefix("line ").replace(",", ""))
        assert ledger_path.read_text().splitlines()[line - 1].startswith(transaction.external_id + ",")
    else:  # the generated ledger's messy rows (quotes) send the rest of the file to the full parser
        assert "read by the full parser" in where
    assert target.line_id in page.inner_text("#matches")
    assert page.locator("#findings tbody tr").count() >= 1
    similar_links = page.locator("#similar tbody th a")
    assert similar_links.count() == 10
    _shot(page, "08-transaction")
    similar_id = similar_links.first.inner_text().strip()
    similar_links.first.click()
    page.wait_for_url(re.compile(rf".*/transactions/{re.escape(similar_id)}/$"))
    assert page.inner_text("h1").endswith(similar_id)
    _shot(page, "09-similar-transaction")

    narrow = chromium.new_page(viewport={"width": 390, "height": 844})
    narrow.context.add_cookies(page.context.cookies())
    narrow.goto(f"{base}/projects/ledger-review/transactions/{transaction.external_id}/")
    narrow.screenshot(path=str(OUTPUT_DIR / "analyst-10-transaction-narrow.png"), full_page=True)
    narrow.close()

    assert not violations, violations
    _findings_part(page, base, analysis_id, violations)


def _findings_part(page, base: str, analysis_id: str, violations: list) -> None:
    """The findings browser: filter, review three, download the reviewed set as CSV."""
    from jobs.models import Finding

    page.goto(f"{base}/jobs/{analysis_id}/")
    page.click("#browse-findings")
    page.wait_for_selector("#findings-filters")
    page.select_option("#f-rule", "round_amount")
    page.click("#findings-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*rule=round_amount.*"))
    expected = Finding.objects.filter(job_id=analysis_id, rule="round_amount").count()
    assert expected >= 3
    _shot(page, "11-findings-filtered")
    reviewed = []
    for number, state in enumerate(("confirmed", "dismissed", "follow_up")):
        page.goto(f"{base}/jobs/{analysis_id}/findings/?rule=round_amount")
        row = page.locator("#findings tbody tr").nth(number)
        row.locator("a").first.click()
        page.wait_for_selector("#review")
        reviewed.append(page.url.split("/findings/")[1].split("/")[0])
        page.check(f"input[name=state][value={state}]")
        page.fill("#review-note", f"Checked against the invoice ({state}).")
        page.click("#review button[type=submit]")
        page.wait_for_selector("#history-title")
        if number == 0:
            _shot(page, "12-finding-reviewed")
    page.goto(f"{base}/jobs/{analysis_id}/findings/?rule=round_amount&review=reviewed")
    with page.expect_download() as download:
        page.click("text=Reviewed findings (CSV)")
    body = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 3, body[:500]
    assert not violations, violations
