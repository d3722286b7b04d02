"""The Celery settings the worker and beat run with: every task bounded in time, below the moment
Redis would hand it to a second worker."""

from types import SimpleNamespace

import pytest

import config
from workers import celery_settings, settle_soft_time_limit


@pytest.fixture
def settings():
    return celery_settings(vars(config.TestingConfig()))


def test_a_hung_task_is_interrupted_then_killed_before_redis_delivers_it_again(settings):
    # The soft limit is the worker's (`settle_soft_time_limit`), TASK_SOFT_TIME_LIMIT by default.
    soft, hard = config.TestingConfig().TASK_SOFT_TIME_LIMIT, settings["task_time_limit"]
    assert 0 < soft < hard < settings["broker_transport_options"]["visibility_timeout"]
    # Room after the interruption to close a mail server's connection (SMTP_TIMEOUT) and roll back.
    assert hard - soft >= 2 * config.TestingConfig().SMTP_TIMEOUT


def test_the_time_limits_follow_the_settings(monkeypatch):
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", "100")
    monkeypatch.setenv("TASK_TIME_LIMIT", "130")
    settings = celery_settings(vars(config.TestingConfig()))
    assert settings["task_time_limit"] == 130
    # Not a task setting: Celery would copy it onto every task, where it outranks the worker's option.
    assert "task_soft_time_limit" not in settings
    worker = SimpleNamespace(soft_time_limit=None)
    settle_soft_time_limit(worker, {"TASK_SOFT_TIME_LIMIT": 100})
    assert worker.soft_time_limit == 100


def test_a_workers_soft_time_limit_becomes_the_one_its_tasks_read():
    settings = vars(config.TestingConfig())
    settle_soft_time_limit(SimpleNamespace(soft_time_limit=250), settings)
    assert settings["TASK_SOFT_TIME_LIMIT"] == 250


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (400, "--soft-time-limit must be more than 0 and less than TASK_TIME_LIMIT"),
        (20, "EMAIL_CLAIM_TIMEOUT_SECONDS must be less than --soft-time-limit"),
    ],
)
def test_a_worker_refuses_a_soft_time_limit_option_the_settings_do_not_allow(option, message):
    """Above the hard limit, or too short for one claim: the worker does not start, and says why."""
    settings = vars(config.TestingConfig())
    with pytest.raises(config.ConfigError, match=message):
        settle_soft_time_limit(SimpleNamespace(soft_time_limit=option), settings)


def test_every_beat_entry_expires_after_a_few_intervals_and_never_within_minutes(settings):
    """During a worker outage beat goes on publishing; the copies no worker took in time are
    discarded unrun, so a returning worker runs a few of each sweep, not hundreds. Behind a
    backlog of a few minutes a copy still reaches a worker, so the sweep still runs."""
    assert settings["beat_schedule"]
    for name, entry in settings["beat_schedule"].items():
        expires = entry.get("options", {}).get("expires")
        interval = entry["schedule"].total_seconds()
        assert expires is not None, f"{name} never expires"
        assert max(interval, 300) <= expires <= max(4 * interval, 300), name
