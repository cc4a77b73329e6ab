"""Schemathesis against the API's own OpenAPI schema: generated requests to every operation
must never get a 5xx, and every response must match what the schema documents; then a
stateful run, where schemathesis chains calls through the links it infers from the schema
(a job id or project id one response gives is used by the next request)."""

from __future__ import annotations

import contextlib
import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import checks

from tests.conftest import api_client

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 40
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@contextlib.contextmanager
def wsgi_in_test_transaction():
    """Calling the WSGI app directly fires request_started/finished, whose
    close_old_connections would close this test's transaction; Django's own test client
    disconnects them the same way (and reconnects them after each of its requests, so this
    wraps only the direct calls)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def load_schema(user):
    raw = api_client(user).get("/api/schema/", {"format": "json"}).content
    schema = schemathesis.openapi.from_dict(json.loads(raw))
    schema.app = get_wsgi_application()
    return schema


@pytest.mark.heavy
def test_generated_requests_get_no_5xx_and_match_the_schema(api_users, redis, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    from jobs.models import Project

    user = api_users["alice"]
    Project.objects.get(id="alice-audit")
    schema = load_schema(user)
    headers = {"Authorization": f"Token {user.auth_token.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    seen = []
    for operation in operations:

        @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        with wsgi_in_test_transaction():
            run()
        seen.append(operation.label)
    print(f"schemathesis: {len(seen)} operations, {EXAMPLES_PER_OPERATION * len(seen)} cases at most, no failure")


@pytest.mark.heavy
def test_chained_requests_through_inferred_links_get_no_5xx(api_users, redis, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    user = api_users["alice"]
    schema = load_schema(user)
    machine = schema.as_state_machine()
    headers = {"Authorization": f"Token {user.auth_token.key}"}

    class Machine(machine):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            case.validate_response(response, checks=CHECKS)

    assert machine.bundles, "schemathesis found no link between the API's operations"
    print(f"schemathesis stateful: links into {sorted(machine.bundles)}")
    with wsgi_in_test_transaction():
        Machine.run(settings=hypothesis_settings(max_examples=30, stateful_step_count=6, deadline=None,
                                                 database=None, derandomize=True,
                                                 suppress_health_check=list(HealthCheck)))
