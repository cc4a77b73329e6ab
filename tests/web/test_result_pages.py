"""The analyst's pages through Django's test client, on real data: a generated ledger and its
bank statement (jobs.management.sample_data) ingested, reconciled, screened and embedded by
jobs run in-process (`drain`). Each page renders what the jobs stored; a job or transaction of
another project is a 404; long lists page by key; the job page shows tables and sentences,
not Python reprs; the charts carry a title, a description and their numbers."""

from __future__ import annotations

import hashlib
import re
from html import unescape
from pathlib import Path

import pytest
from django.test import Client

from jobs.management import sample_data
from jobs.models import Finding, ProcessingJob, Project, StatementMatch, Transaction
from jobs.selectors.results import entity_names
from jobs.services import submit_file, submit_job, submit_project_transactions
from jobs.templatetags.analyst_format import money
from tests.conftest import drain

pytestmark = pytest.mark.django_db

REPRS = re.compile(r"\[\s*&#x27;|\{\s*&#x27;|&#x27;day_first&#x27;|\[\{|\{&quot;|None\b|&#x27;: ")


@pytest.fixture
def alice(api_users):
    client = Client()
    client.force_login(api_users["alice"])
    return client


def _csv(path: Path, records: list[dict], role: str) -> Path:
    sample_data.write(path, records, fields=sample_data.FIELDS_BY_ROLE[role])
    return path


def _submit(project: Project, path: Path, data_type: str) -> ProcessingJob:
    with path.open("rb") as raw:
        job = submit_file(project=project, data_type=data_type, raw=raw, name=path.name)
    drain(job.id)
    job.refresh_from_db()
    return job


@pytest.fixture
def ledger_project(api_users, redis, tmp_path):
    """alice's project with a stored ledger (a canonical CSV: the fast path), its bank
    statement reconciled, and an analysis of the stored ledger. No embedding job yet."""
    project = Project.objects.get(id="alice-audit")
    records, statement, _ = sample_data.transaction_sample(400, seed=5)
    ledger_path = _csv(tmp_path / "ledger.csv", records, "transactions")
    statement_path = _csv(tmp_path / "ledger-statement.csv", statement, "statement")
    ledger = _submit(project, ledger_path, "transaction")
    reconciliation = _submit(project, statement_path, "reconciliation")
    analysis = submit_project_transactions(project=project, data_type="analysis", options={"source": "project"})
    drain(analysis.id)
    analysis.refresh_from_db()
    return {"project": project, "ledger": ledger, "ledger_path": ledger_path, "reconciliation": reconciliation,
            "analysis": analysis}


def _embed(project: Project) -> ProcessingJob:
    job = submit_project_transactions(project=project, data_type="embedding", options={"source": "project"})
    drain(job.id)
    return job


def _text(response) -> str:
    return response.content.decode()


# --- the job page -----------------------------------------------------------------------------


def test_job_page_reads_import_details_and_summary_as_sentences_and_tables(alice, ledger_project):
    ledger = ledger_project["ledger"]
    page = _text(alice.get(f"/jobs/{ledger.id}/"))
    section = page[page.index('id="import-details"'):]
    section = section[:section.index("</section>")]
    assert not REPRS.search(section), REPRS.search(section)
    assert "Read as delimited text (CSV), encoded in UTF-8, with fields separated by commas." in section
    assert "The header is on line 1." in section and "Read in canonical mode: the headers already are" in section
    assert '<caption>Columns of the file and the fields they fill</caption>' in section
    assert '<th scope="row" class="mono plain">counterparty</th><td>counterparty</td>' in section
    assert "<caption>Date columns</caption>" in section and "YYYY-MM-DD" in section
    assert "year first: no day and month to tell apart" in section
    assert ledger.input_checksum in section
    summary = page[page.index('id="summary"'):]
    summary = summary[:summary.index("</section>")]
    assert not REPRS.search(summary), REPRS.search(summary)
    stored = ledger.summary["stored"]
    assert f"{stored:,} transactions stored." in unescape(summary)
    assert "Repeated ids (first 20)" in summary
    first_repeated = ledger.summary["duplicate_ids_sample"][0]
    assert f'href="/projects/alice-audit/transactions/{first_repeated}/"' in summary
    # The stored rows link to their transaction pages.
    first = Transaction.objects.filter(job=ledger).order_by("item_index").first()
    assert f'href="/projects/alice-audit/transactions/{first.external_id}/"' in page

    reconciliation = _text(alice.get(f"/jobs/{ledger_project['reconciliation'].id}/"))
    summary = reconciliation[reconciliation.index('id="summary"'):]
    summary = unescape(summary[:summary.index("</section>")])
    outcomes = ledger_project["reconciliation"].summary["outcomes"]
    assert f"{outcomes['matched']:,} of" in summary and "statement lines matched a ledger row (" in summary
    assert "The statement covers" in summary and "[" not in summary
    assert f"/jobs/{ledger_project['reconciliation'].id}/reconciliation/" in reconciliation


def test_analysis_job_page_has_the_three_charts_with_titles_descriptions_and_tables(alice, ledger_project):
    from django.core.cache import cache

    analysis = ledger_project["analysis"]
    # The finalizer computed the series: the first reader does not wait for them.
    for name in ("findings-over-time", "amount-distribution"):
        assert cache.get(f"analyst-chart:{name}:{analysis.id}:{analysis.completed_at.timestamp()}") is not None
    page = _text(alice.get(f"/jobs/{analysis.id}/"))
    assert 'id="analysis-charts"' in page
    svgs = re.findall(r"<svg class=\"chart analysis-chart\".*?</svg>", page, flags=re.S)
    titles = [unescape(re.search(r"<title id=\"[^\"]+-title\">(.*?)</title>", svg).group(1)) for svg in svgs]
    assert titles[0].startswith("Findings per ") and titles[0].endswith(", by severity")
    assert titles[1] == "Distribution of amounts, per-account outliers marked"
    assert "Benford's law, first digit: observed against expected" in titles
    assert "Benford's law, first two digits: observed against expected" in titles
    for svg in svgs:
        chart_id = re.search(r'id="(chart-[^"]+)"', svg).group(1)
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in svg and 'role="img"' in svg
        assert re.search(rf'<desc id="{chart_id}-desc">[^<]{{40,}}</desc>', svg)
        assert "style=" not in svg
    findings = analysis.summary["findings"]
    assert f"{findings:,} findings over" in unescape(svgs[0])
    # The outliers are marked, and counted in the table next to the chart.
    outliers = Finding.objects.filter(job=analysis, rule="account_outlier").count()
    assert outliers and svgs[1].count('class="outlier-mark"><title>outlier ') == outliers
    assert "<caption>Records per range of absolute amount" in page
    assert "<caption>Share of amounts by first digit, observed and as Benford" in page
    assert "<caption>Findings per " in page
    # A second view of the finished job reads the series from the cache: the same page.
    assert _text(alice.get(f"/jobs/{analysis.id}/")).count("<svg class=\"chart analysis-chart\"") == len(svgs)


def test_readable_import_details_of_a_mapped_bank_export_and_a_stored_source():
    from jobs.web.readable import import_reading, summary_view

    details = {"format": "csv", "encoding": "cp1252", "delimiter": ";", "header_row": 4,
               "columns": ["Buchungstag", "Valuta", "Betrag", "Währung", "Verwendungszweck"],
               "mapping": {"date": "Buchungstag", "amount": "Betrag", "currency": "Währung",
                           "description": "Verwendungszweck"},
               "mode": "mapped", "dates": [{"column": "Buchungstag", "day_first": True, "pattern": "DD.MM.YYYY"}],
               "numbers": [{"column": "Betrag", "decimal_separator": ",", "currency_symbols": ["EUR"],
                            "thousands_separator": "."}],
               "id": "derived from each row's content and its occurrence in the file",
               "given_mapping": {"columns": {"date": "Buchungstag"}, "decimal_separator": ",", "day_first": True},
               "something_new": {"a": 1}}
    reading = import_reading(details)
    assert reading["sentences"][0] == ("Read as delimited text (CSV), encoded in CP1252, with fields separated by "
                                       "semicolons. The header is on line 4.")
    assert "Ids: derived from each row's content and its occurrence in the file." in reading["sentences"]
    assert {"position": 2, "column": "Valuta", "fields": [], "note": "not used"} in reading["columns"]
    assert reading["dates"] == [{"column": "Buchungstag", "reading": "DD.MM.YYYY", "order": "day before month"}]
    assert reading["numbers"][0] == {"column": "Betrag", "decimal": "comma (,)", "thousands": "point (.)",
                                     "symbols": "EUR"}
    assert ("date from", "Buchungstag") in reading["mapping"]
    assert ("Decimal separator", "comma (,)") in reading["mapping"]
    assert reading["other"][0][0] == "Something new"  # an unknown key still shows, by its name
    stored = import_reading({"source": "project", "transactions": 1200, "first_id": 7, "last_id": 1206})
    assert stored["sentences"] == ["Read the project's stored transactions as they were at submission: 1,200 rows "
                                   "(row ids 7 to 1206)."]
    view = summary_view("entity", "entities", {"names": 10, "distinct_names": 8, "entities": 6,
                                               "near_duplicate_groups": 2, "names_in_groups": 4,
                                               "largest_groups": [{"name": "acme", "key": "k1",
                                                                   "members": ["acme", "acme co"]}]})
    assert view["sentences"] == ["10 names, 8 distinct once normalised, are 6 entities; 2 groups of near-duplicates "
                                 "hold 4 of the distinct names."]
    largest = next(row for row in view["rows"] if row["key"] == "largest_groups")["value"]
    assert largest == {"kind": "rows", "columns": ["Name", "Key", "Members"], "rows": [["acme", "k1", "acme, acme co"]]}


def test_upload_preview_reads_as_tables_and_its_buttons_use_no_font_glyph(alice, api_users):
    page = _text(alice.get("/jobs/new/"))
    preview_button = re.search(r'<button[^>]*value="preview">(.*?)</button>', page, flags=re.S).group(1)
    assert '<svg class="icon-svg"' in preview_button and 'aria-hidden="true"' in preview_button
    assert all(ord(char) < 0x2000 for char in unescape(re.sub(r"<[^>]+>", "", preview_button)))
    content = b"Buchungstag;Betrag;Verwendungszweck\n03.04.2026;1.234,56;Miete\n15.04.2026;-12,00;Kaffee\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = alice.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "action": "preview",
                                         "priority": 5, "file": SimpleUploadedFile("bank.csv", content)})
    assert response.status_code == 200
    preview = _text(response)[_text(response).index('id="preview"'):]
    assert not REPRS.search(preview.split("<caption>The first records")[0])
    assert "separated by semicolons" in preview and "day before month" in preview
    assert '<th scope="col" class="mono">amount</th>' in preview and '<td class="mono">1234.56</td>' in preview
    assert "&#128065;" not in _text(response) and "\U0001f441" not in _text(response)


# --- the reconciliation view -------------------------------------------------------------------


def test_reconciliation_view_by_outcome_with_ledger_rows_and_keyset_pages(alice, ledger_project, monkeypatch):
    from jobs.web import results_pages

    job = ledger_project["reconciliation"]
    url = f"/jobs/{job.id}/reconciliation/"
    page = _text(alice.get(url))
    outcomes = job.summary["outcomes"]
    assert f"{outcomes['matched']:,} of {job.summary['lines']:,} statement lines matched" in unescape(page)
    # The summary names the lines' currencies, so a page of ledger rows does not read every line.
    assert job.summary["currencies"] == sorted(set(StatementMatch.objects.filter(job=job)
                                                   .values_list("currency", flat=True)))
    assert 'aria-current="page" id="tab-matched"' in page
    matched = StatementMatch.objects.filter(job=job, outcome="matched").order_by("item_index").first()
    assert matched.line_id in page
    assert f'href="/projects/alice-audit/transactions/{matched.matched_external_id}/"' in page
    unmatched_lines = _text(alice.get(url + "?show=unmatched"))
    for line in StatementMatch.objects.filter(job=job, outcome="unmatched"):
        assert line.line_id in unmatched_lines
    ledger = _text(alice.get(url + "?show=ledger"))
    for external_id in job.summary["ledger_unmatched_sample"]:
        assert f"/projects/alice-audit/transactions/{external_id}/" in ledger
    assert alice.get(url + "?show=everything").status_code == 400

    # Keyset pages: every line once, in statement order, forward and back.
    monkeypatch.setattr(results_pages, "PAGE_SIZE", 7)
    expected = list(StatementMatch.objects.filter(job=job, outcome="matched").order_by("item_index")
                    .values_list("line_id", flat=True))
    pages, query = [], "?show=matched"
    while True:
        response = alice.get(url + query)
        assert response.status_code == 200
        body = _text(response)
        pages.append(re.findall(r'<th scope="row" class="plain mono nowrap">([^<]+)</th>', body))
        following = re.search(r'rel="next" href="\?show=matched&amp;after=([^"]+)"', body)
        if not following:
            break
        query = f"?show=matched&after={following.group(1)}"
    assert [line for page in pages for line in page] == expected
    assert all(len(page) == 7 for page in pages[:-1]) and len(pages) == -(-len(expected) // 7)
    backwards = []
    while True:
        earlier = re.search(r'rel="prev" href="\?show=matched&amp;before=([^"]+)"', body)
        if not earlier:
            break
        body = _text(alice.get(f"{url}?show=matched&before={earlier.group(1)}"))
        backwards.insert(0, re.findall(r'<th scope="row" class="plain mono nowrap">([^<]+)</th>', body))
    assert backwards == pages[:-1]
    assert "First page" not in body  # back at the start
    # The unmatched ledger rows page by (date, id) the same way.
    rows = []
    query = "?show=ledger"
    while query:
        body = _text(alice.get(url + query))
        rows += re.findall(r'<th scope="row" class="plain nowrap"><a class="mono" href="[^"]+">([^<]+)</a>', body)
        following = re.search(r'rel="next" href="\?show=ledger&amp;after=([^"]+)"', body)
        query = f"?show=ledger&after={following.group(1)}" if following else None
    assert len(rows) == len(set(rows)) == job.summary["ledger_unmatched_in_period"]
    assert rows[:20] == job.summary["ledger_unmatched_sample"]
    # A page link that names no position is refused with a sentence, not a 500.
    refused = alice.get(url + "?show=matched&after=not-a-cursor")
    assert refused.status_code == 400 and "This page link is not valid" in _text(refused)


def test_ambiguous_lines_show_their_candidates_side_by_side(alice, api_users, redis):
    project = Project.objects.get(id="alice-audit")
    ledger = submit_job(project=project, data_type="transaction", records=[
        {"id": "L1", "date": "2026-03-02", "amount": "250.00", "currency": "EUR", "counterparty": "Alpha Ltd",
         "description": "consulting"},
        {"id": "L2", "date": "2026-03-02", "amount": "250.00", "currency": "EUR", "counterparty": "Beta GmbH",
         "description": "catering"},
        {"id": "L3", "date": "2026-03-20", "amount": "99.00", "currency": "EUR", "counterparty": "Gamma"},
    ])
    drain(ledger.id)
    statement = submit_job(project=project, data_type="reconciliation", records=[
        {"id": "S1", "date": "2026-03-02", "amount": "250.00", "currency": "EUR", "counterparty": "Zeta Holdings"},
    ])
    drain(statement.id)
    assert StatementMatch.objects.get(job=statement).outcome == "ambiguous"
    page = _text(alice.get(f"/jobs/{statement.id}/reconciliation/?show=ambiguous"))
    table = page[page.index('<div class="compare">'):]
    assert "<caption>Line <span class=\"mono\">S1</span>" in table
    assert re.search(r'<th scope="col">Candidate 1: <a class="mono" href="/projects/alice-audit/transactions/L[12]/">',
                     table)
    assert "Alpha Ltd" in table and "Beta GmbH" in table and '<th scope="row">Amount</th>' in table
    ledger_rows = _text(alice.get(f"/jobs/{statement.id}/reconciliation/?show=ledger"))
    # L1 and L2 are of the statement's period (its one day) and no line matched them; L3 is later.
    assert "/transactions/L1/" in ledger_rows and "/transactions/L2/" in ledger_rows
    assert "/transactions/L3/" not in ledger_rows
    # The transaction page names the line it is a candidate of.
    l1 = _text(alice.get("/projects/alice-audit/transactions/L1/"))
    assert "ambiguous: one of 2 candidates" in l1 and "S1" in l1


# --- entity groups ---------------------------------------------------------------------------------


def test_entity_groups_page_groups_by_key_and_pages(alice, api_users, redis, tmp_path, monkeypatch):
    from jobs.web import results_pages

    records, _ = sample_data.entity_names(120, seed=2)
    job = _submit(Project.objects.get(id="alice-audit"), _csv(tmp_path / "names.csv", records, "entities"),
                  "entity")
    page = _text(alice.get(f"/jobs/{job.id}/entities/"))
    assert f"{job.summary['names']:,} names" in unescape(page)
    biggest = entity_names(job=job).order_by("-group_size", "group_key").first()
    assert biggest.group_size > 1 and f'<span class="mono">{biggest.group_key}</span>' in page
    assert f"/jobs/{job.id}/entities/" in _text(alice.get(f"/jobs/{job.id}/"))

    monkeypatch.setattr(results_pages, "ENTITY_PAGE_SIZE", 5)
    seen, query, cut_groups = [], "", 0
    while True:
        body = _text(alice.get(f"/jobs/{job.id}/entities/?{query}"))
        seen += [unescape(name) for name in re.findall(r'<th scope="row" class="plain">([^<]+)</th>', body)]
        cut_groups += body.count("The group continues on the next page.")
        following = re.search(r'rel="next" href="\?after=([^"]+)"', body)
        if not following:
            break
        query = f"after={following.group(1)}"
    grouped = entity_names(job=job).filter(group_size__gt=1).order_by("-group_size", "group_key", "item_index")
    assert seen == [row.name for row in grouped]
    assert cut_groups >= 1  # five names a page cut at least one group, and the page said so
    everything = _text(alice.get(f"/jobs/{job.id}/entities/?all=1"))
    assert 'href="?all=1" aria-current="page"' in everything


# --- a stored transaction -------------------------------------------------------------------------


def test_transaction_page_values_provenance_findings_matches_and_similar(alice, ledger_project, monkeypatch):
    project, ledger = ledger_project["project"], ledger_project["ledger"]
    analysis = ledger_project["analysis"]
    finding = Finding.objects.filter(job=analysis).exclude(rule="duplicate_payment").order_by("item_index").first()
    transaction = Transaction.objects.get(project=project, external_id=finding.external_id)
    url = f"/projects/alice-audit/transactions/{transaction.external_id}/"
    page = _text(alice.get(url))
    assert f'<td class="mono">{money(transaction.amount)} {transaction.currency}</td>' in page
    assert transaction.counterparty in unescape(page)
    # Provenance: job, file, the upload's SHA-256, record number and (fast path) the exact line.
    checksum = hashlib.sha256(ledger_project["ledger_path"].read_bytes()).hexdigest()
    assert ledger.input_checksum == checksum and f'id="checksum">{checksum}<' in page
    assert f'href="/jobs/{ledger.id}/"' in page and "ledger.csv" in page
    assert f"record {transaction.item_index + 1:,} of" in page
    line = int(re.search(r'id="file-line">line ([\d,]+)<', page).group(1).replace(",", ""))
    file_line = ledger_project["ledger_path"].read_text().splitlines()[line - 1]
    assert file_line.startswith(f"{transaction.external_id},")
    # Findings on it, the statement line matched to it.
    assert f'href="/jobs/{analysis.id}/findings/{finding.id}/"' in page and finding.rule in page
    match = StatementMatch.objects.filter(transaction=transaction).first()
    if match is not None:
        assert match.line_id in page
    # Similar transactions: first a clear message, then the list once an embedding job ran.
    assert "Find-similar needs an embedding job: this project has no finished embedding job" in unescape(page)
    _embed(project)
    page = _text(alice.get(url))
    rows = re.findall(r'<th scope="row" class="plain nowrap"><a class="mono" href="/projects/alice-audit/transactions/'
                      r'([^/]+)/">', page[page.index('id="similar"'):])
    assert len(rows) == 10 and transaction.external_id not in rows
    from jobs.selectors import analyst

    monkeypatch.setattr(analyst, "SIMILAR_INLINE_TEXTS", 10)  # a large embedding job: run only when asked
    deferred = _text(alice.get(url))
    assert 'id="find-similar" href="?similar=1#similar"' in deferred
    assert "transactions/" + rows[0] in _text(alice.get(url + "?similar=1"))
    # By row id: the same page.
    response = alice.get(f"/transactions/{transaction.pk}/")
    assert response.status_code == 302 and response["Location"] == url


def test_line_number_is_given_only_where_it_is_exact(alice, api_users, redis, tmp_path):
    """A file the full parser read (a quoted value) gets a record number and no line."""
    project = Project.objects.get(id="alice-audit")
    path = tmp_path / "quoted.csv"
    path.write_text('id,date,amount,currency,description\nQ1,2026-01-02,10.00,EUR,"two\nlines"\n\n'
                    "Q2,2026-01-03,11.00,EUR,plain\n")
    _submit(project, path, "transaction")
    page = _text(alice.get("/projects/alice-audit/transactions/Q2/"))
    assert "record 2 of 2" in page and 'id="file-line">line' not in page
    assert "read by the full parser" in page
    items = submit_job(project=project, data_type="transaction", records=[
        {"id": "J1", "date": "2026-01-02", "amount": "1", "currency": "EUR"}])
    drain(items.id)
    page = _text(alice.get("/projects/alice-audit/transactions/J1/"))
    assert "items sent through the API" in page and "sent as JSON items" in page


# --- isolation ---------------------------------------------------------------------------------


def test_another_projects_job_and_transaction_are_404(alice, api_users, redis):
    bob_project = Project.objects.get(id="bob-audit")
    ledger = submit_job(project=bob_project, data_type="transaction", records=[
        {"id": "B1", "date": "2026-02-02", "amount": "5.00", "currency": "EUR"}])
    drain(ledger.id)
    statement = submit_job(project=bob_project, data_type="reconciliation", records=[
        {"id": "BS1", "date": "2026-02-02", "amount": "5.00", "currency": "EUR"}])
    drain(statement.id)
    names = submit_job(project=bob_project, data_type="entity", records=[{"name": "Acme Ltd"}, {"name": "ACME"}])
    drain(names.id)
    transaction = Transaction.objects.get(project=bob_project, external_id="B1")
    for path in (f"/jobs/{statement.id}/reconciliation/", f"/jobs/{names.id}/entities/",
                 "/projects/bob-audit/transactions/B1/", f"/transactions/{transaction.pk}/",
                 "/projects/bob-audit/transactions/nothing/", "/projects/nowhere/transactions/B1/",
                 "/transactions/999999999/"):
        assert alice.get(path).status_code == 404, path
    bob = Client()
    bob.force_login(api_users["bob"])
    assert bob.get(f"/jobs/{statement.id}/reconciliation/").status_code == 200
    assert bob.get("/projects/bob-audit/transactions/B1/").status_code == 200
    # A job of the wrong kind has no such view.
    assert bob.get(f"/jobs/{ledger.id}/reconciliation/").status_code == 404
    assert bob.get(f"/jobs/{statement.id}/entities/").status_code == 404
    # Signed out: the sign-in page.
    assert Client().get("/projects/bob-audit/transactions/B1/").status_code == 302


def test_pages_carry_no_inline_style_or_script(alice, ledger_project):
    job = ledger_project["reconciliation"]
    external_id = Transaction.objects.filter(project=ledger_project["project"]).first().external_id
    for path in (f"/jobs/{ledger_project['analysis'].id}/", f"/jobs/{job.id}/reconciliation/",
                 f"/jobs/{job.id}/reconciliation/?show=ledger", f"/projects/alice-audit/transactions/{external_id}/",
                 f"/jobs/{ledger_project['ledger'].id}/"):
        body = _text(alice.get(path))
        assert " style=" not in body and "<style" not in body, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
