"""Fail closed: no APP_ENV, no app; no configuration but testing signs with a key from the repository."""

import os
import stat
import subprocess
import sys

import pytest

import config
from config import ConfigError, DevelopmentConfig, ProductionConfig, config_for, development_secret_key
from leads import create_app
from tests.servers import free_port


def test_the_app_refuses_to_start_without_app_env(monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    with pytest.raises(ConfigError, match="APP_ENV is not set"):
        create_app()
    with pytest.raises(ConfigError, match="APP_ENV is not set"):
        config_for("")


def test_the_wsgi_module_does_not_import_without_app_env():
    env = {k: v for k, v in os.environ.items() if k != "APP_ENV"}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=config.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "APP_ENV is not set" in result.stderr


def _env(**settings: str) -> dict[str, str]:
    """This process's environment without its app settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "DATABASE_URL", "REDIS_URL")}
    return env | settings


@pytest.mark.parametrize(
    "command",
    [
        ["flask", "db", "upgrade"],
        ["gunicorn", "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        ["celery", "-A", "workers.worker", "worker"],
        ["celery", "-A", "workers.worker", "beat"],
    ],
    ids=["flask", "gunicorn", "celery worker", "celery beat"],
)
def test_a_missing_setting_stops_each_documented_command_with_a_message_naming_it(command):
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=config.BASE_DIR,
        env=_env(APP_ENV="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Configuration error: DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_smtp_timeout_too_long_for_the_email_claim_stops_the_app_with_one_line():
    """SMTP_TIMEOUT=20, the default of earlier releases: 14 waits of it outlast the default claim."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=config.BASE_DIR,
        env=_env(APP_ENV="testing", SMTP_TIMEOUT="20"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "Configuration error: SMTP_TIMEOUT (20 s) is too long for EMAIL_CLAIM_TIMEOUT_SECONDS"
    )


def test_a_worker_refuses_to_start_with_a_soft_time_limit_option_the_settings_do_not_allow():
    # Celery logs what a worker_init handler raises and starts the worker anyway.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.worker",
            "worker",
            "--pool",
            "solo",
            "--soft-time-limit",
            "1000",
        ],
        cwd=config.BASE_DIR,
        env=_env(APP_ENV="testing"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert (
        "Configuration error: --soft-time-limit must be more than 0 and less than TASK_TIME_LIMIT"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key", sorted(config.PUBLIC_SECRET_KEYS))
@pytest.mark.parametrize("config_class", [DevelopmentConfig, ProductionConfig])
def test_only_testing_accepts_a_key_written_in_the_repository(monkeypatch, config_class, key):
    monkeypatch.setenv("SECRET_KEY", key)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("BASE_URL", "https://quotes.example")
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        config_class().validate()


def test_the_development_key_is_made_once_per_checkout_and_private(tmp_path):
    path = tmp_path / "var" / "secret_key"
    first = development_secret_key(path)
    assert len(first) >= 43 and first not in config.PUBLIC_SECRET_KEYS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert development_secret_key(path) == first


def test_development_without_secret_key_uses_the_checkout_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(config, "DEV_SECRET_KEY_FILE", tmp_path / "secret_key")
    settings = DevelopmentConfig()
    settings.validate()
    assert (tmp_path / "secret_key").read_text().strip() == settings.SECRET_KEY
