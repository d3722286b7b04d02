"""Liveness and readiness for load balancers and operators."""

import pytest

import config
from leads import create_app
from tests.servers import free_port


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.commits  # the second app opens its own connection to the same database
def test_readyz_is_503_with_a_reason_when_the_broker_is_down(app):
    broken = create_app(config.TestingConfig, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")


def test_readyz_is_503_with_a_reason_when_the_database_is_down(app):
    broken = create_app(
        config.TestingConfig, SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    )
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unreachable")


def test_responses_carry_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
