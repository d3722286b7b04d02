"""Configuration: embedded defaults in development, nothing assumed in production."""

import importlib.util

import pytest

import config
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
    "MAIL_FROM": "Treatment quotes <quotes@quotes.example>",
    "COORDINATOR_EMAIL": "coordinators@quotes.example",
    "SMTP_HOST": "mail.internal",
    "SMTP_PORT": "587",
    "SMTP_STARTTLS": "true",
    "SMTP_USERNAME": "quotes",
    "SMTP_PASSWORD": "mail-password",
}
MAIL_SETTINGS = (
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_STARTTLS",
    "SMTP_TLS",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_ALLOW_PLAINTEXT",
)


@pytest.fixture
def production_env(monkeypatch):
    for key in (*PRODUCTION_ENV, *MAIL_SETTINGS):
        monkeypatch.delenv(key, raising=False)
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BASE_URL", "MAIL_FROM", "COORDINATOR_EMAIL"]
)
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


@pytest.mark.parametrize("name", config.LOGIN_AT_LEAST_ONE)
def test_no_sign_in_ceiling_setting_of_zero_which_would_refuse_or_distrust_every_new_browser(
    monkeypatch, name
):
    monkeypatch.setenv(name, "0")
    with pytest.raises(ConfigError, match=f"{name} must be at least 1"):
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


def test_an_email_claim_that_could_outlast_a_tasks_soft_time_limit_is_refused(monkeypatch):
    """A send task claims an email only while its claim would end before the soft time limit: with
    a claim as long as the limit, no email would ever be claimed."""
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", "120")
    monkeypatch.setenv("DATABASE_TASK_STATEMENT_TIMEOUT", "60")
    monkeypatch.setenv("SMTP_TIMEOUT", "4")  # a whole conversation fits in the shorter claim
    monkeypatch.setenv("EMAIL_CLAIM_TIMEOUT_SECONDS", "120")
    with pytest.raises(ConfigError, match="EMAIL_CLAIM_TIMEOUT_SECONDS must be less than TASK_SOFT_TIME"):
        DevelopmentConfig().validate()
    monkeypatch.setenv("EMAIL_CLAIM_TIMEOUT_SECONDS", "90")
    DevelopmentConfig().validate()


@pytest.mark.parametrize(
    ("smtp_timeout", "claim"),
    [("20", None), ("10.72", None), ("1", "17"), ("0.5", "5")],
    ids=["the earlier default", "just over", "a short claim", "the fault suite's old claim"],
)
def test_an_smtp_timeout_whose_conversation_could_outlast_the_claim_is_refused(
    monkeypatch, smtp_timeout, claim
):
    """A conversation of 14 waits of SMTP_TIMEOUT must end before its claim leaves only the
    margin to record the outcome (30 s, or a quarter of a short claim): else the sweep could take
    the claim back and a second worker send the email while the first still talks."""
    monkeypatch.setenv("SMTP_TIMEOUT", smtp_timeout)
    if claim:
        monkeypatch.setenv("EMAIL_CLAIM_TIMEOUT_SECONDS", claim)
    with pytest.raises(ConfigError) as refused:
        DevelopmentConfig().validate()
    message = str(refused.value)
    assert message.startswith(f"SMTP_TIMEOUT ({smtp_timeout} s) is too long for EMAIL_CLAIM_TIMEOUT_SECONDS")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("smtp_timeout", "claim"),
    [(None, None), ("10.71", None), ("1", "19"), ("0.25", "5")],
    ids=["the defaults", "just inside", "a short claim", "a fraction of a second"],
)
def test_an_smtp_timeout_whose_longest_conversation_fits_the_claim_is_accepted(
    monkeypatch, smtp_timeout, claim
):
    if smtp_timeout:
        monkeypatch.setenv("SMTP_TIMEOUT", smtp_timeout)
    if claim:
        monkeypatch.setenv("EMAIL_CLAIM_TIMEOUT_SECONDS", claim)
    settings = DevelopmentConfig()
    settings.validate()
    assert settings.SMTP_TIMEOUT * config.SMTP_CONVERSATION_WAITS <= settings.EMAIL_CLAIM_TIMEOUT_SECONDS


@pytest.mark.parametrize("smtp_timeout", ["0", "-1", "soon"])
def test_an_smtp_timeout_that_is_no_time_at_all_is_refused(monkeypatch, smtp_timeout):
    monkeypatch.setenv("SMTP_TIMEOUT", smtp_timeout)
    with pytest.raises(ConfigError, match="SMTP_TIMEOUT must"):
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


@pytest.mark.parametrize(
    "base_url",
    [
        "quotes.example.org",  # links would read //quotes.example.org/p/…
        "http://quotes.example.org",
        "https://",
        "https:///p",
        "ftp://quotes.example.org",
        "https://quotes.example.org/?from=mail",
        "https://user:secret@quotes.example.org",
    ],
)
def test_production_refuses_a_base_url_that_is_not_an_https_address(production_env, base_url):
    production_env.setenv("BASE_URL", base_url)
    with pytest.raises(ConfigError, match="BASE_URL must") as refused:
        ProductionConfig().validate()
    assert "secret" not in str(refused.value)


def test_production_takes_an_https_base_url_with_a_port_or_a_path(production_env):
    for base_url in ("https://quotes.example.org:8443", "https://example.org/quotes/"):
        production_env.setenv("BASE_URL", base_url)
        ProductionConfig().validate()


@pytest.mark.parametrize("name", ["MAIL_FROM", "COORDINATOR_EMAIL"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Free quote service <quotes@localhost>", "at localhost, which only this machine knows"),
        ("coordinators@server.localdomain", "at server.localdomain"),
        ("coordinators", "must be one email address"),
        ("a@quotes.example, b@quotes.example", "must be one email address"),
    ],
)
def test_production_refuses_mail_addresses_no_one_outside_this_machine_can_use(
    production_env, name, value, message
):
    production_env.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name} .*{message}"):
        ProductionConfig().validate()


def test_production_refuses_smtp_credentials_without_encryption(production_env):
    production_env.delenv("SMTP_STARTTLS")
    with pytest.raises(ConfigError, match="SMTP_PASSWORD are set but SMTP_TLS is none or not set") as refused:
        ProductionConfig().validate()
    assert "mail-password" not in str(refused.value)
    # Saying the network is trusted does not let a password travel in clear text.
    production_env.setenv("SMTP_ALLOW_PLAINTEXT", "true")
    with pytest.raises(ConfigError, match="SMTP_TLS is none or not set"):
        ProductionConfig().validate()
    production_env.setenv("SMTP_TLS", "none")
    with pytest.raises(ConfigError, match="set SMTP_TLS=starttls .* or SMTP_TLS=implicit"):
        ProductionConfig().validate()


def test_production_refuses_unencrypted_mail_to_another_machine_unless_told_the_relay_is_trusted(
    production_env,
):
    for key in ("SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        production_env.delenv(key)
    with pytest.raises(
        ConfigError, match="SMTP_TLS is none or not set: patients' emails would go to mail.internal"
    ):
        ProductionConfig().validate()
    production_env.setenv("SMTP_ALLOW_PLAINTEXT", "true")
    ProductionConfig().validate()


def test_production_takes_implicit_tls_as_encrypted_on_port_465_unless_told_otherwise(production_env):
    production_env.delenv("SMTP_STARTTLS")
    production_env.delenv("SMTP_PORT")
    production_env.setenv("SMTP_TLS", "implicit")
    settings = ProductionConfig()
    settings.validate()  # credentials too: they travel inside TLS
    assert (settings.SMTP_TLS, settings.SMTP_PORT) == ("implicit", 465)
    production_env.setenv("SMTP_PORT", "2465")
    assert ProductionConfig().SMTP_PORT == 2465


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ({}, ("none", 25)),
        ({"SMTP_STARTTLS": "true"}, ("starttls", 25)),  # the older setting keeps its meaning
        ({"SMTP_STARTTLS": "false"}, ("none", 25)),
        ({"SMTP_TLS": " STARTTLS "}, ("starttls", 25)),
        ({"SMTP_TLS": "starttls", "SMTP_STARTTLS": "true"}, ("starttls", 25)),
        ({"SMTP_TLS": "implicit", "SMTP_STARTTLS": "false"}, ("implicit", 465)),
        ({"SMTP_TLS": "none", "SMTP_STARTTLS": ""}, ("none", 25)),
    ],
)
def test_smtp_tls_is_read_from_either_setting(production_env, given, read):
    for key in ("SMTP_STARTTLS", "SMTP_PORT"):
        production_env.delenv(key)
    for key, value in given.items():
        production_env.setenv(key, value)
    settings = ProductionConfig()
    settings_read = (settings.SMTP_TLS, settings.SMTP_PORT)
    assert settings_read == read


@pytest.mark.parametrize("value", ["ssl", "tls", "true", "smtps"])
def test_an_unknown_smtp_tls_stops_the_app_with_its_name(production_env, value):
    production_env.setenv("SMTP_TLS", value)
    with pytest.raises(ConfigError, match=f"SMTP_TLS must be one of starttls, implicit, none, got '{value}'"):
        create_app(ProductionConfig)


@pytest.mark.parametrize(("tls", "starttls"), [("implicit", "true"), ("none", "true"), ("starttls", "false")])
def test_smtp_tls_and_smtp_starttls_that_disagree_are_refused(production_env, tls, starttls):
    production_env.setenv("SMTP_TLS", tls)
    production_env.setenv("SMTP_STARTTLS", starttls)
    with pytest.raises(ConfigError, match=f"SMTP_TLS is {tls} but SMTP_STARTTLS is '{starttls}'"):
        ProductionConfig()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_mail_server_on_this_machine_needs_no_encryption(production_env, host):
    production_env.delenv("SMTP_STARTTLS")
    production_env.setenv("SMTP_HOST", host)
    ProductionConfig().validate()  # credentials too: they never leave the machine
    production_env.delenv("SMTP_USERNAME")
    production_env.delenv("SMTP_PASSWORD")
    ProductionConfig().validate()


def test_the_benchmarks_production_environment_starts(monkeypatch):
    path = config.BASE_DIR / "bench" / "_support.py"
    spec = importlib.util.spec_from_file_location("bench_support", path)
    support = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(support)
    env = support.project_env("postgresql://bench@127.0.0.1/bench", "redis://127.0.0.1:6390/0", web_port=5000)
    for key in (*PRODUCTION_ENV, *MAIL_SETTINGS):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert config_for(env["APP_ENV"]) is ProductionConfig
    ProductionConfig().validate()


@pytest.mark.parametrize("name", ["SMTP_STARTTLS", "SMTP_ALLOW_PLAINTEXT", "ERASURE_AUTOMATIC_WHEN_DUE"])
@pytest.mark.parametrize("given", ["ture", "enabled", "2"])
def test_a_yes_or_no_setting_that_is_neither_stops_the_app_with_its_name(monkeypatch, name, given):
    """A typo must not quietly read as "off"."""
    monkeypatch.setenv(name, given)
    with pytest.raises(ConfigError, match=f"{name} must be true or false .*got '{given}'"):
        DevelopmentConfig()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("true", True), ("Yes", True), ("1", True), (" on ", True), ("false", False), ("NO", False),
     ("0", False), ("off", False), ("", False)],
)  # fmt: skip
def test_a_yes_or_no_setting_reads_the_usual_words_and_empty_is_its_default(monkeypatch, given, expected):
    monkeypatch.setenv("SMTP_ALLOW_PLAINTEXT", given)
    assert DevelopmentConfig().SMTP_ALLOW_PLAINTEXT is expected


def test_due_erasures_are_carried_out_unless_the_operator_switches_it_off(monkeypatch):
    monkeypatch.delenv("ERASURE_AUTOMATIC_WHEN_DUE", raising=False)
    assert DevelopmentConfig().ERASURE_AUTOMATIC_WHEN_DUE is True
    monkeypatch.setenv("ERASURE_AUTOMATIC_WHEN_DUE", "false")
    assert DevelopmentConfig().ERASURE_AUTOMATIC_WHEN_DUE is False
