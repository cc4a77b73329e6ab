"""A large upload, or a large JSON body, is parsed as a stream: the web process's memory stays bounded.

The file goes to a real gunicorn process over HTTP as a chunked multipart body, so nothing
in the test process holds it either; the server's resident memory is sampled meanwhile."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.support.web_process import PeakRss, gunicorn

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 300_000


def write_csv(path) -> int:
    with open(path, "w") as out:
        out.write("id,date,amount,currency,account,counterparty,description,reference\n")
        for i in range(ROWS):
            out.write(f"U{i:08d},2026-02-{i % 28 + 1:02d},{i % 5000 + 0.99:.2f},EUR,ACC-{i % 97:04d},"
                      f"Counterparty {i % 1013},Invoice {i} for professional services rendered,REF{i}\n")
    return path.stat().st_size


def multipart(path, fields: dict, boundary: str) -> tuple[bytes, bytes]:
    """The multipart envelope around the file's bytes (which are streamed from disk)."""
    head = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
                    for name, value in fields.items())
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
             "Content-Type: text/csv\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def write_json_body(path) -> int:
    """The whole submission as one JSON document, items last-but-one to exercise key order."""
    with open(path, "w") as out:
        out.write('{"project_id": "alice-audit", "items": [\n')
        for i in range(ROWS):
            out.write(("," if i else "") + json.dumps({
                "id": f"U{i:08d}", "date": f"2026-02-{i % 28 + 1:02d}", "amount": f"{i % 5000 + 0.99:.2f}",
                "currency": "EUR", "account": f"ACC-{i % 97:04d}", "counterparty": f"Counterparty {i % 1013}",
                "description": f"Invoice {i} for professional services rendered", "reference": f"REF{i}"}) + "\n")
        out.write('], "data_type": "transaction"}')
    return path.stat().st_size


def csv_multipart(tmp_path) -> tuple[str, bytes, object, bytes]:
    boundary = uuid.uuid4().hex
    write_csv(tmp_path / "big.csv")
    head, tail = multipart(tmp_path / "big.csv", {"project_id": "alice-audit", "data_type": "transaction"},
                           boundary)
    return f"multipart/form-data; boundary={boundary}", head, tmp_path / "big.csv", tail


def json_body(tmp_path) -> tuple[str, bytes, object, bytes]:
    write_json_body(tmp_path / "big.json")
    return "application/json", b"", tmp_path / "big.json", b""


@pytest.mark.parametrize("make_body", [csv_multipart, json_body], ids=["csv-upload", "json-body"])
def test_streamed_upload_keeps_web_memory_bounded(api_users, redis, tmp_path, make_body):
    content_type, head, path, tail = make_body(tmp_path)
    size = path.stat().st_size
    with gunicorn() as web:
        conn = web.connection()
        with PeakRss(web.process) as rss:
            started = time.monotonic()
            response, body = post_streamed(conn, api_users["alice"].auth_token.key, content_type, head, path, tail)
            seconds = time.monotonic() - started
        assert response.status == 201, body[:500]
        growth_mb = rss.growth_mb
        print(f"{content_type.split(';')[0]}: {size / 2**20:.0f} MB, {ROWS:,} rows in {seconds:.1f} s; "
              f"web RSS {rss.baseline / 2**20:.0f} MB "
              f"-> peak {rss.peak / 2**20:.0f} MB (+{growth_mb:.0f} MB)")
        from jobs.models import ProcessingJob

        job = ProcessingJob.objects.get()
        assert job.total_items == ROWS
        # Parsed into Python objects once, 500 at a time: the growth is a few batches plus
        # the buffers, far from the ~300 MB a list of 300k dicts would take (json.loads of the
        # JSON body alone grows a process by 313 MB, measured).
        assert growth_mb < 60, growth_mb


def post_streamed(conn, token: str, content_type: str, head: bytes, path, tail: bytes,
                  url: str = "/api/v1/batch-jobs/submit"):
    """POSTs `head`, the file at `path` (sent from disk in 64 KB pieces) and `tail`:
    (response, body)."""
    size = path.stat().st_size
    conn.putrequest("POST", url)
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with open(path, "rb") as source:
        while chunk := source.read(1 << 16):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    return response, response.read()
