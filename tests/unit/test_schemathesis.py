"""Schemathesis against the served OpenAPI document: no 5xx, every response as documented.

Generated requests (valid and invalid bodies, queries and ids) go through the
real app with a bearer token; examples are bounded so the run stays short.
"""

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.extensions import db
from app.services import accounts
from tests import backends

FOLDER = tempfile.mkdtemp(prefix="taskdeck-st-")
APP = create_app(
    {
        "TESTING": True,
        "DATA_DIR": FOLDER,
        "SQLALCHEMY_DATABASE_URI": backends.fresh_database(FOLDER),
    }
)
with APP.app_context():
    db.create_all()
    TOKEN = accounts.create_token(accounts.create_user("fuzz", "fuzz-password"), "st")[1]

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_as_documented(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
