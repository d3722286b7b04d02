"""No personal data in logs: canary values sent through errors, searches, the quote form and link
pages appear in no captured application log line and no gunicorn access-log line."""

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from gunicorn.config import Config as GunicornConfig

import config
from leads import create_app
from leads.extensions import db
from leads.messaging.tokens import make_assignment_token, make_patient_token
from leads.models import User
from leads.weblog import ACCESS_LOG_FORMAT, RedactingLogger, redact_target
from tests.quote_support import answers, client_with_own_address
from tests.staff_support import signed_in_client

# Runs again on PostgreSQL: PostgreSQL's error details quote row values.
pytestmark = pytest.mark.pg

CANARY_EMAIL = "canary.zq7@example.org"
CANARY_NAME = "Canaryname Zqxv"
CANARY_PHONE = "+4520997711"
CANARIES = (CANARY_EMAIL, "canary.zq7", CANARY_NAME, "Canaryname", "Zqxv", "20997711")


class RequestRecorder:
    """WSGI middleware keeping each request's environ and status, as gunicorn would see them."""

    def __init__(self, wsgi_app):
        self.wsgi_app, self.seen = wsgi_app, []

    def __call__(self, environ, start_response):
        record = {"environ": dict(environ)}
        self.seen.append(record)

        def recording_start_response(status, headers, exc_info=None):
            record["status"], record["headers"] = status, headers
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, recording_start_response)


def access_log_lines(recorder: RequestRecorder) -> list[str]:
    config = GunicornConfig()
    config.set("access_log_format", ACCESS_LOG_FORMAT)
    logger = RedactingLogger(config)
    lines = []
    for record in recorder.seen:
        environ = dict(record["environ"])
        query = environ.get("QUERY_STRING", "")
        environ["RAW_URI"] = environ["PATH_INFO"] + (f"?{query}" if query else "")
        request_headers = [
            (key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")
        ]
        response = SimpleNamespace(status=record["status"], sent=100, headers=record["headers"])
        atoms = logger.atoms(response, SimpleNamespace(headers=request_headers), environ, timedelta(0))
        lines.append(config.access_log_format % logger.atoms_wrapper_class(atoms))
    return lines


@pytest.fixture
def recorder(app):
    app.wsgi_app = RequestRecorder(app.wsgi_app)
    return app.wsgi_app


def _assert_clean(texts):
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"{canary!r} leaked into: {text[:300]}"


@pytest.mark.commits  # an app of its own, with a route added for the test
def test_a_database_error_with_personal_data_logs_none_of_it(app, recorder, caplog):
    app = create_app(config.TestingConfig)

    def failing_write():
        db.session.add_all(
            [User(email=CANARY_EMAIL, password_hash="x"), User(email=CANARY_EMAIL, password_hash="x")]
        )
        db.session.flush()  # the unique email fails, with the canary as a bound parameter

    app.add_url_rule("/canary-error", "canary_error", failing_write)
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().get("/canary-error")
    assert response.status_code == 500
    assert "IntegrityError" in caplog.text  # the error itself is logged, just not its values
    _assert_clean([caplog.text, *access_log_lines(recorder)])


def test_searches_keep_the_term_out_of_urls_and_logs(app, recorder, caplog):
    client, _ = signed_in_client(app)
    with caplog.at_level(logging.DEBUG):
        for term in (CANARY_EMAIL, CANARY_NAME, CANARY_PHONE):
            response = client.post("/staff/leads", data={"q": term, "status": "open"})
            assert response.status_code == 303
            assert "status=open" in response.headers["Location"]
            page = client.get(response.headers["Location"], headers={"Referer": "http://x/staff/leads"})
            assert page.status_code == 200 and f'value="{term}"' in page.get_data(as_text=True)
            next_page = client.get(response.headers["Location"] + "&after=junk", headers={"Referer": "x"})
            assert next_page.status_code == 200
        # An old link with the term in its query string is moved out of the URL at once.
        old = client.get(f"/staff/leads?q={CANARY_EMAIL}")
        assert old.status_code == 303 and CANARY_EMAIL not in old.headers["Location"]
    lines = access_log_lines(recorder)
    _assert_clean([caplog.text, *lines])
    _assert_clean(str(row) for row in db.session.execute(sa.text("SELECT detail FROM access_log")))


def test_quote_requests_log_no_personal_data(app, taxonomy, recorder, caplog):
    client = client_with_own_address(app)
    with caplog.at_level(logging.DEBUG):
        sent = answers(app, full_name=CANARY_NAME, email=CANARY_EMAIL, phone=CANARY_PHONE)
        assert client.post("/quote", data=sent).status_code == 303
        refused = answers(app, full_name=CANARY_NAME, email="canary.zq7@", phone=CANARY_PHONE)
        assert client.post("/quote", data=refused).status_code in (200, 400, 422)
    _assert_clean([caplog.text, *access_log_lines(recorder)])


def test_link_tokens_never_reach_the_access_log(app, recorder):
    provider_token, patient_token = make_assignment_token(424242), make_patient_token(424242)
    client = app.test_client()
    client.get(f"/p/{provider_token}?utm=1")
    client.get(
        f"/my-request/{patient_token}", headers={"Referer": f"https://q.example/p/{provider_token}?a=b"}
    )
    lines = access_log_lines(recorder)
    assert len(lines) == 2
    for line in lines:
        assert provider_token not in line and patient_token not in line and "utm" not in line
    assert "/p/[token]?[redacted]" in lines[0] and "/my-request/[token]" in lines[1]


def test_redaction_of_request_targets():
    assert redact_target("/p/abc.def-ghi") == "/p/[token]"
    assert redact_target("/p/abc/quote?x=1") == "/p/[token]/quote?[redacted]"
    assert redact_target("https://h.example/my-request/t0k3n#x") == "https://h.example/my-request/[token]"
    assert redact_target("/staff/leads?status=open&search=abc") == "/staff/leads?[redacted]"
    assert redact_target("/quote") == "/quote"


@pytest.mark.commits  # the app's own engine, not a test connection
def test_the_engine_hides_bound_parameters(app):
    assert db.engine.hide_parameters is True
