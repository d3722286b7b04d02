"""Configuration: embedded defaults in development, nothing assumed in production."""

import pytest

from config import (
    RETENTION_PERIODS,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    config_for,
    engine_options,
    normalise_database_url,
)
from leads import create_app

PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 48,
    "DATABASE_URL": "postgresql://quotes@db.internal/quotes",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "BASE_URL": "https://quotes.example",
    "TRUSTED_PROXY_COUNT": "1",
}


@pytest.fixture
def production_env(monkeypatch):
    for key in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BASE_URL"])
def test_production_refuses_to_start_without_a_required_variable_and_names_it(production_env, missing):
    production_env.delenv(missing)
    with pytest.raises(ConfigError, match=missing):
        create_app(ProductionConfig)


def test_production_refuses_the_development_secret_key(production_env):
    production_env.setenv("SECRET_KEY", "dev-only-insecure-secret-key")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        ProductionConfig().validate()


def test_production_config_uses_secure_cookies_and_psycopg(production_env):
    config = ProductionConfig()
    config.validate()
    assert config.SESSION_COOKIE_SECURE is True
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://quotes@db.internal/quotes"


def test_development_has_embedded_defaults_for_everything(monkeypatch):
    for key in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_HOST", "SMTP_PORT"):
        monkeypatch.delenv(key, raising=False)
    config = DevelopmentConfig()
    config.validate()
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.REDIS_URL.startswith("redis://:") and config.REDIS_URL.endswith("@127.0.0.1:6390/0")
    assert (config.SMTP_HOST, config.SMTP_PORT) == ("127.0.0.1", 8025)


def test_a_malformed_number_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SMTP_PORT", "twenty-five")
    with pytest.raises(ConfigError, match="SMTP_PORT must be a whole number"):
        DevelopmentConfig()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("soon", "must be a number of seconds, got 'soon'"),
        ("-1", "must not be negative"),
        ("nan", "must not be negative"),
    ],
)
@pytest.mark.parametrize("name", ["OUTBOX_RECORD_INTERVAL_SECONDS", "BROKER_PUBLISH_TIMEOUT"])
def test_a_malformed_interval_is_a_clear_error(monkeypatch, name, given, message):
    monkeypatch.setenv(name, given)
    with pytest.raises(ConfigError, match=f"{name} {message}"):
        DevelopmentConfig()


def test_a_broker_publish_timeout_of_zero_is_refused(monkeypatch):
    monkeypatch.setenv("BROKER_PUBLISH_TIMEOUT", "0")
    with pytest.raises(ConfigError, match="BROKER_PUBLISH_TIMEOUT must be more than 0"):
        DevelopmentConfig()


def test_an_interval_in_fractions_of_a_second_is_read(monkeypatch):
    monkeypatch.setenv("OUTBOX_RECORD_INTERVAL_SECONDS", "0.5")
    assert DevelopmentConfig().OUTBOX_RECORD_INTERVAL_SECONDS == 0.5


@pytest.mark.parametrize("name", RETENTION_PERIODS)
def test_a_negative_retention_period_stops_the_app_with_its_name(monkeypatch, name):
    monkeypatch.setenv(name, "-1")
    with pytest.raises(ConfigError, match=f"{name} must not be negative"):
        DevelopmentConfig().validate()


def test_a_retention_period_of_zero_is_allowed(monkeypatch):
    """Anonymising ended requests at the next run is the operator's choice to make."""
    monkeypatch.setenv("RETENTION_SPAM_DAYS", "0")
    DevelopmentConfig().validate()


def test_no_stalled_retention_period_of_zero_which_would_close_every_open_request(monkeypatch):
    monkeypatch.setenv("RETENTION_STALLED_MONTHS", "0")
    with pytest.raises(ConfigError, match="RETENTION_STALLED_MONTHS must be at least 1"):
        DevelopmentConfig().validate()


@pytest.mark.parametrize(
    ("soft", "hard"),
    [("0", "360"), ("360", "300"), ("300", "300"), ("300", "900"), ("300", "1200")],
)
def test_task_time_limits_out_of_order_or_past_the_visibility_timeout_are_refused(monkeypatch, soft, hard):
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", soft)
    monkeypatch.setenv("TASK_TIME_LIMIT", hard)
    with pytest.raises(ConfigError, match="TASK_SOFT_TIME_LIMIT must be more than 0 and less than TASK_TIME"):
        DevelopmentConfig().validate()


def test_a_task_statement_timeout_past_the_soft_time_limit_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_TASK_STATEMENT_TIMEOUT", "300")
    with pytest.raises(ConfigError, match="DATABASE_TASK_STATEMENT_TIMEOUT must be less than TASK_SOFT"):
        DevelopmentConfig().validate()
    monkeypatch.setenv("DATABASE_TASK_STATEMENT_TIMEOUT", "0")  # none: the operator's decision
    DevelopmentConfig().validate()


def test_unknown_app_env_is_a_clear_error():
    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        config_for("staging")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_pointed_at_psycopg3(given, expected):
    assert normalise_database_url(given) == expected


def test_postgresql_connections_give_up_on_a_silent_server():
    args = engine_options("postgresql+psycopg://u@db.internal/quotes")["connect_args"]
    assert args["connect_timeout"] == 5
    # An idle connection is probed after 9 s, every 2 s, dropped after 3 missed probes: 15 s, as
    # long as data sent may go unacknowledged.
    assert (args["keepalives"], args["keepalives_idle"], args["keepalives_interval"]) == (1, 9, 2)
    assert (args["keepalives_count"], args["tcp_user_timeout"]) == (3, 15_000)
    assert "connect_args" not in engine_options("sqlite:///x.db")


def test_a_connection_parameter_written_in_the_database_url_wins():
    url = "postgresql+psycopg://u@db.internal/quotes?connect_timeout=30&sslmode=require"
    args = engine_options(url, connect_timeout=5, tcp_timeout=0)["connect_args"]
    assert args == {}


def test_the_production_engine_takes_the_connection_timeouts_from_the_environment(production_env):
    production_env.setenv("DATABASE_CONNECT_TIMEOUT", "3")
    production_env.setenv("DATABASE_TCP_TIMEOUT", "30")
    app = create_app(ProductionConfig)
    args = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert args["connect_timeout"] == 3
    assert args["tcp_user_timeout"] == 30_000
    assert args["keepalives_idle"] + args["keepalives_count"] * args["keepalives_interval"] == 30
