"""Hostile files and bodies (issue 18): every reader works within a budget, and exceeding one
is a 4xx naming the limit and its setting, within seconds, never a 500.

Each case is a real file, built small (tests/hostile/files.py), posted through the API's
submit and preview endpoints and the upload page. The bombs are also sent to a real gunicorn
worker whose resident memory is sampled (heavy: run on the PostgreSQL pass)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
import uuid
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import ProcessingJob, Transaction
from tests.conftest import api_client, drain
from tests.hostile import files

pytestmark = pytest.mark.django_db(transaction=True)

SUBMIT = "/api/v1/batch-jobs/submit"
PREVIEW = "/api/v1/batch-jobs/preview"
SECONDS = 10  # generous: each refusal takes well under a second


@dataclasses.dataclass
class Attack:
    name: str
    filename: str
    build: Callable[[], bytes]
    status: int  # the refusal's, or 0 when the file is read (fast) rather than refused
    setting: str | None = None  # the limit the answer must name
    settings: dict = dataclasses.field(default_factory=dict)  # a limit raised to reach the next one, or lowered
    words: str = ""  # in the message when no setting is named


ATTACKS = [
    # A 5 KB workbook declaring A1:XFD1048576 with a row numbered 1,048,576 (issue 18): read
    # at once, its declared dimension ignored.
    Attack("xlsx-declared-grid", "grid.xlsx", files.huge_dimension_xlsx, 0),
    # Formatted empty cells in column XFD on every row: four columns are used, and read.
    Attack("xlsx-styled-last-column", "styled.xlsx", lambda: files.styled_cells_xlsx(5000), 0),
    Attack("xlsx-values-in-16384-columns", "wide.xlsx", files.wide_xlsx, 413, "ZENITH_MAX_COLUMNS"),
    Attack("xlsx-long-row", "long.xlsx", files.long_row_xlsx, 413, "ZENITH_MAX_LINE_BYTES"),
    # Shared strings are held whole by openpyxl: bounded by their declared size.
    Attack("xlsx-large-shared-strings", "strings.xlsx", files.shared_strings_xlsx, 413, "ZENITH_MAX_XLSX_PART_BYTES",
           {"ZENITH_MAX_XLSX_PART_BYTES": 4096}),
    # 1 GB of zeros in 1 MB: binary, refused as such (it was taken for UTF-16).
    Attack("zeros-csv-gz", "zeros.csv.gz", files.zeros_csv_gz, 400, words="NUL bytes"),
    # 512 MB of short CSV lines in 1 MB (a bank's layout: preview reads every date and amount
    # to decide the columns); with the ratio allowed, the absolute cap.
    Attack("lines-csv-gz", "lines.csv.gz", lambda: files.short_lines_csv_gz(512), 413,
           "ZENITH_MAX_DECOMPRESSION_RATIO"),
    # A 256 MB line in 260 KB: the line limit, long before the ratio's floor.
    Attack("long-line-csv-gz", "line.csv.gz", files.long_line_csv_gz, 413, "ZENITH_MAX_LINE_BYTES"),
    Attack("lines-csv-gz-over-the-cap", "lines.csv.gz", lambda: files.short_lines_csv_gz(64), 413,
           "ZENITH_MAX_DECOMPRESSED_BYTES",
           {"ZENITH_MAX_DECOMPRESSION_RATIO": 1_000_000, "ZENITH_MAX_DECOMPRESSED_BYTES": 4 << 20}),
    Attack("long-line-csv", "line.csv", lambda: b"id,description\nt1," + b"A" * (80 << 10) + b"\n", 413,
           "ZENITH_MAX_LINE_BYTES"),
    Attack("long-quoted-field-csv", "field.csv",
           lambda: b'id,description\nt1,"' + b"A\n" * (40 << 10) + b'"\n', 413,
           "ZENITH_MAX_LINE_BYTES"),
    Attack("wide-csv", "wide.csv", lambda: ",".join(f"c{i}" for i in range(5000)).encode() + b"\n", 413,
           "ZENITH_MAX_COLUMNS"),
    # A 128 MB MEMO in 131 KB (it was accepted and echoed back by preview).
    Attack("memo-ofx-gz", "memo.ofx.gz", files.long_memo_ofx_gz, 413, "ZENITH_MAX_DECOMPRESSION_RATIO"),
    Attack("memo-ofx-gz-ratio-allowed", "memo.ofx.gz", lambda: files.long_memo_ofx_gz(32), 413,
           "ZENITH_MAX_OFX_BYTES", {"ZENITH_MAX_DECOMPRESSION_RATIO": 1_000_000}),
    Attack("memo-ofx", "memo.ofx", lambda: gzip.decompress(files.long_memo_ofx_gz(1)), 413,
           "ZENITH_MAX_LINE_BYTES"),
    # Nested 100,000 deep (it was a RecursionError).
    Attack("deep-json", "deep.json", lambda: files.deep_json().encode(), 400, "ZENITH_MAX_JSON_DEPTH"),
    Attack("deep-jsonl", "deep.jsonl", lambda: files.deep_object(10_000).encode() + b"\n", 400,
           "ZENITH_MAX_JSON_DEPTH"),
    Attack("deep-record-in-json", "deep.json", lambda: ('[{"id": "a", "x": ' + files.deep_json(100) + "}]").encode(),
           400, "ZENITH_MAX_JSON_DEPTH"),
    Attack("wide-json-record", "wide.jsonl", lambda: json.dumps({f"k{i}": 1 for i in range(5000)}).encode() + b"\n",
           413, "ZENITH_MAX_COLUMNS"),
    Attack("long-json-value", "long.json", lambda: ('[{"id": "' + "A" * (80 << 10) + '"}]').encode(), 413,
           "ZENITH_MAX_LINE_BYTES"),
]
ATTACK_IDS = [attack.name for attack in ATTACKS]


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    return {attack.name: attack.build() for attack in ATTACKS}


def _configure(settings, attack: Attack) -> None:
    for name, value in attack.settings.items():
        setattr(settings, name, value)


def _check_refusal(attack: Attack, status: int, body: dict | str, seconds: float) -> None:
    assert status != 500
    assert seconds < SECONDS, seconds
    if not attack.status:
        assert status in (200, 201), body
        return
    assert status == attack.status, body
    text = body if isinstance(body, str) else body["detail"]
    if attack.setting:
        assert attack.setting in text, text
        if not isinstance(body, str):
            assert body["setting"] == attack.setting and body["code"] in ("input_too_large", "input_too_deep")
    else:
        assert attack.words in text, text


@pytest.mark.parametrize("endpoint", [SUBMIT, PREVIEW])
@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_hostile_files_through_the_api(api_users, redis, settings, built, attack, endpoint):
    _configure(settings, attack)
    content = built[attack.name]
    assert len(content) < 2 << 20  # small on disk, whatever it expands to
    client = api_client(api_users["alice"])
    started = time.monotonic()
    response = client.post(endpoint, {"project_id": "alice-audit", "data_type": "transaction",
                                      "file": SimpleUploadedFile(attack.filename, content)}, format="multipart")
    _check_refusal(attack, response.status_code, response.json(), time.monotonic() - started)
    if attack.status:
        assert ProcessingJob.objects.count() == 0


@pytest.mark.parametrize("action", ["preview", "submit"])
@pytest.mark.parametrize("attack", [a for a in ATTACKS if a.status], ids=[a.name for a in ATTACKS if a.status])
def test_hostile_files_through_the_upload_page(api_users, redis, settings, built, attack, action):
    _configure(settings, attack)
    client = Client()
    client.force_login(api_users["alice"])
    started = time.monotonic()
    response = client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                          "action": action,
                                          "file": SimpleUploadedFile(attack.filename, built[attack.name])})
    _check_refusal(attack, response.status_code, response.content.decode(), time.monotonic() - started)
    assert ProcessingJob.objects.count() == 0


def test_the_wall_time_and_the_rows_are_bounded(api_users, redis, settings):
    """A file within every other limit that takes longer to read than ZENITH_MAX_PARSE_SECONDS,
    and a preview that would read more rows than a job may have."""
    client = api_client(api_users["alice"])
    slow = files.short_lines_csv_gz(8)  # 8 MB of dated amounts, read whole to decide the columns
    settings.ZENITH_MAX_DECOMPRESSION_RATIO = 1_000_000
    settings.ZENITH_MAX_PARSE_SECONDS = 0.05
    for endpoint in (SUBMIT, PREVIEW):
        started = time.monotonic()
        response = client.post(endpoint, {"project_id": "alice-audit", "data_type": "transaction",
                                          "file": SimpleUploadedFile("slow.csv.gz", slow)}, format="multipart")
        assert time.monotonic() - started < SECONDS
        assert response.status_code == 413, response.content[:300]
        assert response.json()["setting"] == "ZENITH_MAX_PARSE_SECONDS"
        assert "ZENITH_MAX_PARSE_SECONDS" in response.json()["detail"]
    settings.ZENITH_MAX_PARSE_SECONDS = 300
    settings.ZENITH_MAX_ITEMS_PER_JOB = 1000
    response = client.post(PREVIEW, {"project_id": "alice-audit", "data_type": "transaction",
                                      "file": SimpleUploadedFile("many.csv.gz", files.short_lines_csv_gz(1))},
                           format="multipart")
    assert response.status_code == 413 and response.json()["setting"] == "ZENITH_MAX_ITEMS_PER_JOB"
    assert ProcessingJob.objects.count() == 0


# --- nesting in request bodies and form fields ------------------------------------------------

DEEP = files.deep_json()


@pytest.mark.parametrize("body", [
    '{"project_id": "alice-audit", "data_type": "transaction", "items": [' + DEEP + "]}",
    '{"project_id": "alice-audit", "data_type": "transaction", "items": [{"id": "a", "x": ' + DEEP + "}]}",
    '{"project_id": "alice-audit", "data_type": "transaction", "options": ' + files.deep_object() + ', "items": []}',
    '{"project_id": "alice-audit", "data_type": "transaction", "options": {"mapping": ' + DEEP + '}, "items": []}',
], ids=["items", "inside-an-item", "options", "mapping-in-options"])
def test_deeply_nested_json_submissions_are_refused(api_users, redis, body):
    client = api_client(api_users["alice"])
    started = time.monotonic()
    response = client.post(SUBMIT, body, content_type="application/json")
    assert time.monotonic() - started < SECONDS
    assert response.status_code == 400, response.content[:300]
    assert response.json()["setting"] == "ZENITH_MAX_JSON_DEPTH"
    assert ProcessingJob.objects.count() == 0


def test_deeply_nested_mappings_and_options_are_refused(api_users, redis):
    client = api_client(api_users["alice"])
    csv_file = b"id,date,amount,currency\nA,2026-01-01,5,EUR\n"
    for endpoint in (SUBMIT, PREVIEW):
        for field in ("mapping", "options"):
            response = client.post(endpoint, {"project_id": "alice-audit", "data_type": "transaction",
                                              field: DEEP, "file": SimpleUploadedFile("t.csv", csv_file)},
                                   format="multipart")
            assert response.status_code == 400, (endpoint, field, response.content[:300])
            assert response.json()["setting"] == "ZENITH_MAX_JSON_DEPTH"
    response = client.post("/api/v1/projects/alice-audit/mappings", '{"name": "deep", "mapping": ' + DEEP + "}",
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["setting"] == "ZENITH_MAX_JSON_DEPTH"
    page = Client()
    page.force_login(api_users["alice"])
    for field in ("mapping", "options"):
        response = page.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                            field: DEEP, "file": SimpleUploadedFile("t.csv", csv_file)})
        assert response.status_code == 400 and "ZENITH_MAX_JSON_DEPTH" in response.content.decode(), field
    assert ProcessingJob.objects.count() == 0


# --- what was imported is stored as it was written ---------------------------------------------

@pytest.mark.parametrize("name,content", [
    ("canonical.csv", "id,date,amount,currency,description,counterparty\n"
                      "t1,2026-01-02,1.00,EUR,\t=1+2,\t@SUM(A1)\nt2,2026-01-03,2.00,EUR,  padded  ,plain\n"),
    ("mapped.csv", "Buchungstag;Betrag;Währung;Verwendungszweck;Empfänger\n"
                   "02.01.2026;1,00;EUR;\t=1+2;\t@SUM(A1)\n03.01.2026;2,00;EUR;  padded  ;plain\n"),
])
def test_a_leading_tab_before_a_formula_is_kept(api_users, redis, name, content):
    """Trimming a tab off "\\t=1+2" stored a live formula: white space before =, +, - or @
    is kept; other padding is still trimmed."""
    client = api_client(api_users["alice"])
    response = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction",
                                    "file": SimpleUploadedFile(name, content.encode())}, format="multipart")
    assert response.status_code == 201, response.content
    drain(response.json()["job_id"])
    rows = list(Transaction.objects.order_by("date").values_list("description", "counterparty"))
    assert rows == [("\t=1+2", "\t@SUM(A1)"), ("padded", "plain")]


# --- the web process's memory, on a real gunicorn worker ---------------------------------------

BOMBS = [attack for attack in ATTACKS if attack.name in (
    "zeros-csv-gz", "lines-csv-gz", "long-line-csv-gz", "memo-ofx-gz", "xlsx-declared-grid",
    "lines-csv-gz-over-the-cap", "memo-ofx-gz-ratio-allowed", "deep-json")]


@pytest.mark.heavy
@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.parametrize("endpoint", [SUBMIT, PREVIEW])
def test_bombs_leave_the_web_process_memory_bounded(api_users, redis, built, tmp_path, endpoint, capsys):
    from tests.api.test_upload_memory import multipart, post_streamed
    from tests.support.web_process import PeakRss, gunicorn

    token = api_users["alice"].auth_token.key
    report = []
    for overrides in ({}, *{json.dumps(bomb.settings, sort_keys=True): bomb.settings for bomb in BOMBS
                            if bomb.settings}.values()):
        cases = [bomb for bomb in BOMBS if bomb.settings == overrides]
        with gunicorn(**overrides) as web:
            for bomb in cases:
                path = tmp_path / bomb.filename
                path.write_bytes(built[bomb.name])
                boundary = uuid.uuid4().hex
                head, tail = multipart(path, {"project_id": "alice-audit", "data_type": "transaction"}, boundary)
                conn = web.connection(timeout=60)
                with PeakRss(web.process) as rss:
                    started = time.monotonic()
                    response, body = post_streamed(conn, token, f"multipart/form-data; boundary={boundary}", head,
                                                   path, tail, url=endpoint)
                    seconds = time.monotonic() - started
                conn.close()
                time.sleep(0.2)
                after_mb = (web.rss() - rss.baseline) / 2**20
                report.append(f"{endpoint.rsplit('/', 1)[1]} {bomb.name}: {response.status} in {seconds:.2f} s, "
                              f"RSS {rss.baseline / 2**20:.0f} MB -> peak +{rss.growth_mb:.0f} MB, "
                              f"after +{after_mb:.0f} MB")
                _check_refusal(bomb, response.status, json.loads(body), seconds)
                assert rss.growth_mb < 60, report[-1]
                assert after_mb < 30, report[-1]
    with capsys.disabled():
        print("\n" + "\n".join(report))
