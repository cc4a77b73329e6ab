"""The findings browser, the finding page and reviews (issue 21): filters in the query string,
sorts, keyset pages (forward, backward, stable while findings are added), the finding's
transaction and review history, reviews by role with their audit entries, reviews that survive a
re-run of the analysis over the same data, the reviewed set as CSV, the admin, and the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from jobs.forensics import redflags
from jobs.models import AuditEntry, Finding, FindingReview, ProcessingJob, Project, ProjectMembership
from jobs.selectors import findings as selectors
from jobs.services import submit_job, submit_project_transactions
from tests.conftest import api_client, drain
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2025, 6, 2)  # eight weeks without a TARGET2 holiday follow


def ledger() -> list[dict]:
    """Forty business-day payments with a few planted flags: round sums (T05, T20), one just
    below the 10,000 threshold (T10), a Saturday posting (T15), a repeated payment (T31 after T30)."""
    def amount(i: int) -> str:
        return {5: "5000.00", 10: "9800.00", 20: "20000.00", 30: "1234.56", 31: "1234.56"}.get(i, f"{101 + 7 * i}.37")

    def date(i: int) -> str:
        if i == 15:
            return "2025-06-07"
        return (MONDAY + dt.timedelta(days=7 * (i // 5) + i % 5)).isoformat()

    return transaction_records(40, "T", digits=2, date=date, amount=amount, currency="EUR",
                               account=lambda i: "ACC-1" if i % 2 else "ACC-2",
                               counterparty=lambda i: "Acme Ltd" if i in (30, 31) else f"Vendor {i}",
                               description=lambda i: f"Invoice {i} for services")


@pytest.fixture
def team(api_users):
    """alice owns alice-audit; ana is an analyst and vic a viewer there."""
    project = Project.objects.get(id="alice-audit")
    users = {"alice": api_users["alice"], "bob": api_users["bob"], "carol": api_users["staff"]}
    for name, role in (("ana", "analyst"), ("vic", "viewer")):
        users[name] = get_user_model().objects.create_user(name, password="pw")
        ProjectMembership.objects.create(project=project, user=users[name], role=role)
    from rest_framework.authtoken.models import Token

    for name in ("ana", "vic"):
        Token.objects.create(user=users[name])
    return users


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def analyse_stored(project: Project) -> ProcessingJob:
    """An analysis job over the project's stored transactions, run in this process."""
    job = submit_project_transactions(project=project, data_type="analysis")
    drain(job.id)
    job.refresh_from_db()
    return job


@pytest.fixture
def screened(team, redis):
    """The ledger stored in alice-audit, then screened with options.source=project."""
    project = Project.objects.get(id="alice-audit")
    drain(submit_job(project=project, data_type="transaction", records=ledger()).id)
    return analyse_stored(project)


def rows_of(response) -> list[Finding]:
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row["item"].finding for row in response.context["rows"]]


def finding(job: ProcessingJob, rule: str, external_id: str) -> Finding:
    return Finding.objects.get(job=job, rule=rule, external_id=external_id)


# --- browser: filters, links ------------------------------------------------------------------------

def test_the_job_page_links_the_browser_which_filters_by_the_query_string(team, screened):
    job = screened
    alice = browser(team["alice"])
    assert f"/jobs/{job.id}/findings/" in alice.get(f"/jobs/{job.id}/").content.decode()
    url = f"/jobs/{job.id}/findings/"
    every = rows_of(alice.get(url, {"size": 100}))
    assert len(every) == Finding.objects.filter(job=job).count() >= 5
    assert alice.get(url).context["total"] == len(every)

    expected = {
        ("rule", "round_amount"): {"T05", "T20"},
        ("rule", "just_below_threshold"): {"T10"},
        ("rule", "weekend_holiday"): {"T15"},
        ("rule", "duplicate_payment"): {"T31"},
    }
    for (name, value), ids in expected.items():
        response = alice.get(url, {name: value})
        found = rows_of(response)
        assert {f.external_id for f in found} == ids and {f.rule for f in found} == {value}
        assert response.context["total"] == len(ids)  # from the job's summary
    assert {f.severity for f in rows_of(alice.get(url, {"severity": "medium"}))} == {"medium"}
    assert {f.account for f in rows_of(alice.get(url, {"account": "ACC-1", "size": 100}))} == {"ACC-1"}
    assert {f.external_id for f in rows_of(alice.get(url, {"counterparty": "acme"}))} == {"T31"}
    assert {f.external_id for f in rows_of(alice.get(url, {"external_id": "T20"}))} == {"T20"}
    in_range = rows_of(alice.get(url, {"amount_min": "5000", "amount_max": "10000", "size": 100}))
    assert {f.external_id for f in in_range} >= {"T05", "T10"} and all(5000 <= f.amount <= 10000 for f in in_range)
    week = rows_of(alice.get(url, {"date_from": "2025-06-02", "date_to": "2025-06-08", "size": 100}))
    assert week and all(dt.date(2025, 6, 2) <= f.date <= dt.date(2025, 6, 8) for f in week)
    combined = alice.get(url, {"rule": "round_amount", "amount_min": "10000"})
    assert [f.external_id for f in rows_of(combined)] == ["T20"] and combined.context["total"] == 1
    # The filters are the page's address: the form shows them again, links keep them.
    page = combined.content.decode()
    assert 'value="10000"' in page and '<option value="round_amount" selected>' in page
    assert "amount_min=10000" in combined.context["csv_url"]

    for params, message in (({"rule": "nonsense"}, "rule must be one of"),
                            ({"amount_min": "lots"}, "amount_min must be a number"),
                            ({"date_from": "03/03/2025"}, "date_from must be a date"),
                            ({"date_from": "2025-04-01", "date_to": "2025-03-01"}, "must not be after"),
                            ({"sort": "colour"}, "sort must be one of"),
                            ({"after": "not-a-cursor"}, "does not name a position"),
                            ({"size": "7"}, "size must be one of")):
        refused = alice.get(url, params)
        assert refused.status_code == 400 and message in refused.content.decode(), params

    assert browser(team["bob"]).get(url).status_code == 404  # another project's job: as if missing
    assert browser(team["vic"]).get(url).status_code == 200  # viewers read
    assert Client().get(url).status_code == 302  # sign in first
    transaction_job = ProcessingJob.objects.filter(project_id="alice-audit", data_type="transaction").get()
    assert alice.get(f"/jobs/{transaction_job.id}/findings/").status_code == 404


class _Controls(HTMLParser):
    """Form controls, labels, table header cells and any style attribute or inline script."""

    def __init__(self):
        super().__init__()
        self.controls, self.labelled, self.headers, self.problems = [], set(), [], []
        self._in_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.problems.append(f"style attribute on <{tag}>")
        if tag == "script" and "src" not in attrs:
            self.problems.append("inline script")
        if tag == "label":
            self._in_label += 1
            if attrs.get("for"):
                self.labelled.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.controls.append((attrs.get("id"), self._in_label > 0, attrs.get("name")))
        if tag == "th":
            self.headers.append(attrs.get("scope"))

    def handle_endtag(self, tag):
        if tag == "label":
            self._in_label -= 1


def test_pages_label_every_control_scope_every_header_and_need_no_inline_style(team, screened):
    job = screened
    alice = browser(team["alice"])
    target = finding(job, "round_amount", "T05")
    for url in (f"/jobs/{job.id}/findings/", f"/jobs/{job.id}/findings/{target.id}/"):
        page = _Controls()
        page.feed(alice.get(url).content.decode())
        assert not page.problems, (url, page.problems)
        unlabelled = [c for c in page.controls if not c[1] and c[0] not in page.labelled]
        assert page.controls and not unlabelled, (url, unlabelled)
        assert page.headers and all(scope in ("col", "row") for scope in page.headers), url
    body = alice.get(f"/jobs/{job.id}/findings/", {"sort": "-date"}).content.decode()
    assert 'aria-sort="descending"' in body and "<caption" in body


# --- keyset pages ------------------------------------------------------------------------------------

SEVERITY_ORDER = ["high", "medium", "low"]
RULES = sorted(redflags.ALL_RULES)


def synthetic(job: ProcessingJob, numbers: range, **fixed) -> list[Finding]:
    """Findings with many ties on every sort key (seven dates, five amounts, three severities)."""
    rows = [Finding(job=job, **{
        "rule": RULES[i % 5], "severity": SEVERITY_ORDER[i % 3], "item_index": 10_000 + i, "external_id": f"S{i:04d}",
        "date": MONDAY + dt.timedelta(days=i % 7), "amount": Decimal((i * 7) % 5 * 100) + Decimal("0.25"),
        "currency": "EUR", "account": f"A{i % 3}", "counterparty": f"Vendor {i % 4}", "explanation": "synthetic",
        **fixed}) for i in numbers]
    return Finding.objects.bulk_create(rows)


def expected_order(findings: list[Finding], sort: str) -> list[int]:
    name, descending = sort.lstrip("-"), sort.startswith("-")
    key = {
        "severity": lambda f: (SEVERITY_ORDER.index(f.severity), f.date, f.id),
        "rule": lambda f: (RULES.index(f.rule), f.item_index),
        "date": lambda f: (f.date, f.id),
        "amount": lambda f: (f.amount, f.id),
    }[name]
    return [f.id for f in sorted(findings, key=key, reverse=descending)]


def walk_pages(client: Client, url: str, params: dict, *, backwards: bool = False) -> list[list[int]]:
    """Every page, following Next from the first (or Previous from the last); in list order."""
    response = client.get(url, {**params, **({"page": "last"} if backwards else {})})
    pages = []
    while True:
        pages.append([f.id for f in rows_of(response)])
        link = response.context["previous_url" if backwards else "next_url"]
        if not link:
            break
        response = client.get(url + link)
        assert len(pages) < 100
    return pages[::-1] if backwards else pages


@pytest.fixture
def many(team, screened):
    """The screened job, its own findings replaced by 130 synthetic ones."""
    job = screened
    Finding.objects.filter(job=job).delete()
    synthetic(job, range(130))
    return job


@pytest.mark.parametrize("sort", [value for value, _ in selectors.SORT_CHOICES])
def test_keyset_pages_forward_and_backward_in_every_sort(team, many, sort):
    job = many
    alice = browser(team["alice"])
    url = f"/jobs/{job.id}/findings/"
    expected = expected_order(list(Finding.objects.filter(job=job)), sort)
    forward = walk_pages(alice, url, {"sort": sort, "size": 25})
    assert [len(p) for p in forward] == [25, 25, 25, 25, 25, 5]
    assert sum(forward, []) == expected
    backward = walk_pages(alice, url, {"sort": sort, "size": 25}, backwards=True)
    # Pages counted from the end: the last is full, and Previous at the start shows a full first
    # page rather than the five findings left over.
    assert [len(p) for p in backward] == [25] * 6
    assert backward[0] == expected[:25] and sum(backward[1:], []) == expected[5:]
    first = alice.get(url, {"sort": sort, "size": 25})
    assert first.context["previous_url"] is None and first.context["first_url"] is None


def test_pages_do_not_shift_when_findings_are_added_and_never_use_offset(team, many):
    job = many
    alice = browser(team["alice"])
    url = f"/jobs/{job.id}/findings/"
    first = alice.get(url, {"sort": "date", "size": 25})
    second_before = [f.id for f in rows_of(alice.get(url + first.context["next_url"]))]
    # A finding that sorts before the cursor (the earliest date, a higher id than any) and
    # one among the second page's dates: an offset would shift the second page by one.
    synthetic(job, range(500, 501), date=MONDAY - dt.timedelta(days=30))
    with CaptureQueriesContext(connection) as queries:
        second_after = [f.id for f in rows_of(alice.get(url + first.context["next_url"]))]
    assert second_after == second_before
    assert not [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"].upper()]
    # Previous from the second page: the 25 findings just before it, as they were; the new
    # one is a page further back.
    back = alice.get(url + alice.get(url + first.context["next_url"]).context["previous_url"])
    assert [f.id for f in rows_of(back)] == [f.id for f in rows_of(first)]
    assert [f.external_id for f in rows_of(alice.get(url + back.context["previous_url"]))][0] == "S0500"


def test_filters_and_named_value_sorts_combine(team, many):
    job = many
    alice = browser(team["alice"])
    url = f"/jobs/{job.id}/findings/"
    params = {"sort": "-severity", "severity": "medium", "rule": "round_amount", "size": 25}
    medium_round = [f for f in Finding.objects.filter(job=job, severity="medium", rule="round_amount")]
    assert sum(walk_pages(alice, url, params), []) == expected_order(medium_round, "-severity")
    cheap = [f for f in Finding.objects.filter(job=job, amount__lte=Decimal("200.25"))]
    pages = walk_pages(alice, url, {"sort": "-amount", "amount_max": "200.25", "size": 25})
    assert sum(pages, []) == expected_order(cheap, "-amount")
    cursor = alice.get(url, {"sort": "date", "size": 25}).context["next_url"].split("after=")[1]
    wrong = alice.get(url, {"sort": "amount", "after": cursor})
    assert wrong.status_code == 400 and "another sort" in wrong.content.decode()


# --- the finding page and reviews -----------------------------------------------------------------------

def review(client: Client, job: ProcessingJob, target: Finding, state: str, note: str = "", **extra):
    return client.post(f"/jobs/{job.id}/findings/{target.id}/review/", {"state": state, "note": note, **extra})


def test_the_finding_page_shows_the_transaction_the_rule_and_the_history(team, screened):
    job = screened
    alice = browser(team["alice"])
    duplicate = finding(job, "duplicate_payment", "T31")
    page = alice.get(f"/jobs/{job.id}/findings/{duplicate.id}/", {"rule": "duplicate_payment"})
    body = page.content.decode()
    assert page.status_code == 200
    assert "Invoice 31 for services" in body  # the stored transaction's description
    assert "Invoice 30 for services" in body  # and the earlier payment it names
    assert duplicate.explanation in body.replace("&#x27;", "'")
    assert selectors.RULE_GUIDE["duplicate_payment"][1].replace("'", "&#x27;") in body
    assert "Not reviewed yet." in body and 'name="state"' in body
    assert f'href="/jobs/{job.id}/findings/?rule=duplicate_payment"' in body  # back to the same list

    other_job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="analysis",
                           records=transaction_records(2, "X", amount="50.10"))
    drain(other_job.id)
    assert alice.get(f"/jobs/{other_job.id}/findings/{duplicate.id}/").status_code == 404
    assert browser(team["bob"]).get(f"/jobs/{job.id}/findings/{duplicate.id}/").status_code == 404
    viewer_page = browser(team["vic"]).get(f"/jobs/{job.id}/findings/{duplicate.id}/").content.decode()
    assert 'name="state"' not in viewer_page and "needs the analyst or owner role" in viewer_page

    # A job over a file's own records: no stored row, the record as the job read it.
    file_job = submit_job(project=Project.objects.get(id="bob-audit"), data_type="analysis",
                          records=transaction_records(1, "F", amount="3000.00", description="a file row"))
    drain(file_job.id)
    flagged = Finding.objects.get(job=file_job)
    body = browser(team["bob"]).get(f"/jobs/{file_job.id}/findings/{flagged.id}/").content.decode()
    assert "As this job read it" in body and "3,000.00" in body


def test_analysts_review_viewers_cannot_history_is_kept_and_audited(team, screened):
    job = screened
    target = finding(job, "round_amount", "T05")
    ana, alice, vic = browser(team["ana"]), browser(team["alice"]), browser(team["vic"])
    saved = review(ana, job, target, "follow_up", "Ask the AP clerk for the invoice.", seen_review="0",
                   back="rule=round_amount")
    assert saved.status_code == 302 and saved["Location"] == f"/jobs/{job.id}/findings/{target.id}/?rule=round_amount"
    first = FindingReview.objects.get()
    assert (first.state, first.note, first.reviewer, first.job_id) == (
        "follow_up", "Ask the AP clerk for the invoice.", team["ana"], job.id)

    assert review(vic, job, target, "dismissed", "looks fine").status_code == 403
    assert browser(team["carol"]).post(f"/jobs/{job.id}/findings/{target.id}/review/",
                                       {"state": "dismissed"}).status_code == 403  # an operator is no analyst
    assert FindingReview.objects.count() == 1

    # A review made on an out-of-date page is refused, with who reviewed meanwhile.
    stale = review(alice, job, target, "dismissed", "Invoice found.", seen_review="0")
    assert stale.status_code == 409 and "ana reviewed this finding" in stale.content.decode()
    assert "Invoice found." in stale.content.decode()  # what was typed is kept
    assert review(alice, job, target, "", "no verdict", seen_review=str(first.id)).status_code == 400
    assert review(alice, job, target, "confirmed", "x" * 4001, seen_review=str(first.id)).status_code == 400
    assert review(alice, job, target, "dismissed", "Invoice found.", seen_review=str(first.id)).status_code == 302

    history = selectors.review_history(target)
    assert [(r.state, r.reviewer_name) for r in history] == [("dismissed", "alice"), ("follow_up", "ana")]
    assert FindingReview.objects.get(id=first.id).note == "Ask the AP clerk for the invoice."  # never overwritten
    body = alice.get(f"/jobs/{job.id}/findings/{target.id}/").content.decode()
    assert body.index("Invoice found.") < body.index("Ask the AP clerk for the invoice.")  # newest first

    entries = list(AuditEntry.objects.filter(action="finding.reviewed").order_by("id"))
    assert [(e.actor_name, e.project_key, e.target, e.details["state"], e.details["previous_state"])
            for e in entries] == [("ana", "alice-audit", "finding:round_amount:T05", "follow_up", None),
                                  ("alice", "alice-audit", "finding:round_amount:T05", "dismissed", "follow_up")]
    assert entries[1].details["note"] == "Invoice found." and entries[1].details["job"] == str(job.id)


@pytest.mark.parametrize("sparse", [selectors.SPARSE_REVIEWS, 0], ids=["looked-up-by-key", "checked-per-finding"])
def test_findings_filter_by_review_state_in_the_browser_and_the_results_api(team, screened, monkeypatch, sparse):
    monkeypatch.setattr(selectors, "SPARSE_REVIEWS", sparse)
    job = screened
    ana = browser(team["ana"])
    url = f"/jobs/{job.id}/findings/"
    review(ana, job, finding(job, "round_amount", "T05"), "confirmed", "round cash")
    review(ana, job, finding(job, "round_amount", "T20"), "confirmed", "first look")
    review(ana, job, finding(job, "round_amount", "T20"), "dismissed", "contract price")
    review(ana, job, finding(job, "weekend_holiday", "T15"), "follow_up")
    total = Finding.objects.filter(job=job).count()

    def ids(state: str) -> set[str]:
        return {f"{f.rule}:{f.external_id}" for f in rows_of(ana.get(url, {"review": state, "size": 100}))}

    assert ids("confirmed") == {"round_amount:T05"}  # T20's latest review dismissed it
    assert ids("dismissed") == {"round_amount:T20"}
    assert ids("follow_up") == {"weekend_holiday:T15"}
    assert ids("reviewed") == {"round_amount:T05", "round_amount:T20", "weekend_holiday:T15"}
    assert len(ids("unreviewed")) == total - 3 and "round_amount:T05" not in ids("unreviewed")
    listed = {f.external_id: row for row in ana.get(url, {"size": 100}).context["rows"]
              for f in [row["item"].finding] if f.rule == "round_amount"}
    assert listed["T20"]["item"].current.state == "dismissed" and len(listed["T20"]["item"].reviews) == 2

    api = api_client(team["vic"])
    results = f"/api/v1/batch-jobs/{job.id}/results"
    body = api.get(results, {"review_state": "dismissed"}).json()
    assert body["count"] == 1 and body["results"][0]["external_id"] == "T20"
    assert api.get(results, {"review_state": "unreviewed"}).json()["count"] == total - 3
    assert api.get(results).json()["count"] == total  # without the filter: as before
    bad = api.get(results, {"review_state": "maybe"})
    assert bad.status_code == 400 and "review_state must be one of" in bad.json()["detail"]


def test_reviews_survive_a_rerun_of_the_analysis_over_the_same_data(team, screened):
    first_job = screened
    ana = browser(team["ana"])
    old = finding(first_job, "just_below_threshold", "T10")
    review(ana, first_job, old, "confirmed", "Split payment: see T11.")

    second_job = analyse_stored(Project.objects.get(id="alice-audit"))
    assert second_job.id != first_job.id and second_job.options == {"source": "project"}
    new = finding(second_job, "just_below_threshold", "T10")
    assert new.id != old.id
    assert Finding.objects.filter(job=second_job).count() == Finding.objects.filter(job=first_job).count()

    url = f"/jobs/{second_job.id}/findings/"
    confirmed = rows_of(ana.get(url, {"review": "confirmed"}))
    assert [f.id for f in confirmed] == [new.id]
    body = ana.get(f"/jobs/{second_job.id}/findings/{new.id}/").content.decode()
    assert "Split payment: see T11." in body and f'href="/jobs/{first_job.id}/"' in body  # made on the first run

    # Reviewing on the new run adds to the same history, seen from either run.
    review(ana, second_job, new, "follow_up", "Ask for the second invoice.", seen_review=str(FindingReview.objects
                                                                                            .get().id))
    assert [r.state for r in selectors.review_history(old)] == ["follow_up", "confirmed"]
    assert rows_of(ana.get(f"/jobs/{first_job.id}/findings/", {"review": "follow_up"}))[0].id == old.id
    reviews = api_client(team["vic"]).get(
        f"/api/v1/batch-jobs/{second_job.id}/findings/just_below_threshold/T10/reviews").json()
    assert reviews["state"] == "follow_up" and [r["job_id"] for r in reviews["results"]] == [
        str(second_job.id), str(first_job.id)]


def test_retention_deletes_the_old_run_and_keeps_its_reviews(team, screened):
    from django.utils import timezone

    from jobs.services.retention import cleanup_old_jobs

    first_job = screened
    review(browser(team["ana"]), first_job, finding(first_job, "round_amount", "T20"), "confirmed", "kept")
    second_job = analyse_stored(Project.objects.get(id="alice-audit"))
    ProcessingJob.objects.filter(id=first_job.id).update(completed_at=timezone.now() - dt.timedelta(days=400))
    assert cleanup_old_jobs(retention_days=30, chunk=7)["jobs"] == 1
    kept = FindingReview.objects.get()
    assert kept.job_id is None and kept.note == "kept"  # unlinked from the deleted run, not deleted
    page = browser(team["ana"]).get(f"/jobs/{second_job.id}/findings/", {"review": "confirmed"})
    assert [f.external_id for f in rows_of(page)] == ["T20"]
    detail = browser(team["ana"]).get(page.context["rows"][0]["url"]).content.decode()
    assert "(deleted)" in detail and "kept" in detail


def test_the_reviewed_set_exports_as_csv_with_formulas_defused(team, screened):
    job = screened
    ana = browser(team["ana"])
    review(ana, job, finding(job, "round_amount", "T05"), "confirmed", '=HYPERLINK("http://evil.example","x")')
    review(ana, job, finding(job, "round_amount", "T20"), "follow_up", "first")
    review(ana, job, finding(job, "round_amount", "T20"), "dismissed", "@SUM(A1)")
    review(ana, job, finding(job, "weekend_holiday", "T15"), "dismissed", "weekend batch run")

    def exported(**params) -> list[dict]:
        response = ana.get(f"/jobs/{job.id}/findings/reviewed.csv", params)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        text = b"".join(response.streaming_content).decode()
        return list(csv.DictReader(io.StringIO(text)))

    rows = exported()
    assert [(r["rule"], r["external_id"], r["review_state"], r["reviewer"]) for r in rows] == [
        ("round_amount", "T05", "confirmed", "ana"), ("weekend_holiday", "T15", "dismissed", "ana"),
        ("round_amount", "T20", "dismissed", "ana")]
    assert rows[0]["review_note"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[2]["review_note"] == "'@SUM(A1)" and rows[2]["reviews"] == "2"
    assert rows[0]["amount"] == "5000" and dt.datetime.fromisoformat(rows[0]["reviewed_at"])
    assert [r["external_id"] for r in exported(rule="round_amount", review="dismissed")] == ["T20"]
    history = exported(history="1", rule="round_amount")
    assert [(r["external_id"], r["review_state"], r["review_note"]) for r in history] == [
        ("T05", "confirmed", '\'=HYPERLINK("http://evil.example","x")'), ("T20", "follow_up", "first"),
        ("T20", "dismissed", "'@SUM(A1)")]
    assert exported(review="unreviewed") == exported()  # the export is of the reviewed set
    assert ana.get(f"/jobs/{job.id}/findings/reviewed.csv", {"rule": "x"}).status_code == 400
    assert browser(team["bob"]).get(f"/jobs/{job.id}/findings/reviewed.csv").status_code == 404


def test_the_admin_shows_review_history_read_only(team, screened):
    job = screened
    target = finding(job, "round_amount", "T05")
    review(browser(team["ana"]), job, target, "confirmed", "Cash withdrawal, no receipt.")
    root = browser(get_user_model().objects.create_superuser("root", password="pw"))
    listing = root.get("/admin/jobs/findingreview/", {"state__exact": "confirmed"}).content.decode()
    assert "Cash withdrawal, no receipt." in listing and "T05" in listing
    entry = FindingReview.objects.get()
    assert root.get(f"/admin/jobs/findingreview/{entry.id}/change/").status_code == 200
    assert root.get("/admin/jobs/findingreview/add/").status_code == 403
    assert root.post(f"/admin/jobs/findingreview/{entry.id}/delete/", {"post": "yes"}).status_code == 403
    assert root.post(f"/admin/jobs/findingreview/{entry.id}/change/", {"state": "dismissed"}).status_code == 403
    finding_page = root.get(f"/admin/jobs/finding/{target.id}/change/").content.decode()
    assert "Cash withdrawal, no receipt." in finding_page and "review history" in finding_page.lower()
    link = re.search(r'href="(/admin/jobs/findingreview/\?[^"]+)"', finding_page).group(1).replace("&amp;", "&")
    assert "Cash withdrawal" in root.get(link).content.decode()
    assert FindingReview.objects.get().state == "confirmed"


# --- the API -----------------------------------------------------------------------------------------

def test_api_lists_and_posts_reviews_by_role(team, screened):
    job = screened
    url = f"/api/v1/batch-jobs/{job.id}/findings/round_amount/T20/reviews"
    analyst, viewer = api_client(team["ana"]), api_client(team["vic"])
    empty = viewer.get(url).json()
    assert empty == {"rule": "round_amount", "external_id": "T20", "state": "unreviewed", "count": 0, "results": []}

    created = analyst.post(url, {"state": "confirmed", "note": "  Contract price, no PO.  "}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["state"], body["note"], body["reviewer"], body["job_id"]) == (
        "confirmed", "Contract price, no PO.", "ana", str(job.id))
    refused = viewer.post(url, {"state": "dismissed"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "not_allowed"
    assert "need the analyst role (your role is viewer)" in refused.json()["detail"]
    assert analyst.post(url, {"state": "maybe"}, format="json").status_code == 400
    stale = analyst.post(url, {"state": "dismissed", "seen_review": 0}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "review_conflict"
    assert stale.json()["latest_review"] == body["id"]
    assert analyst.post(url, {"state": "dismissed", "seen_review": body["id"]}, format="json").status_code == 201

    listed = viewer.get(url).json()
    assert listed["state"] == "dismissed" and [r["state"] for r in listed["results"]] == ["dismissed", "confirmed"]
    assert viewer.get(f"/api/v1/batch-jobs/{job.id}/findings/round_amount/T21/reviews").status_code == 404
    assert viewer.get(f"/api/v1/batch-jobs/{job.id}/findings/nonsense/T20/reviews").status_code == 404
    assert api_client(team["bob"]).get(url).status_code == 404
    assert api_client(team["bob"]).post(url, {"state": "confirmed"}, format="json").status_code == 404
    assert api_client().get(url).status_code == 401
    assert AuditEntry.objects.filter(action="finding.reviewed", actor_name="ana").count() == 2
