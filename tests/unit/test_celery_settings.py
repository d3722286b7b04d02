"""The Celery settings the worker and beat run with: every task bounded in time, below the moment
Redis would hand it to a second worker."""

import pytest

import config
from workers import celery_settings


@pytest.fixture
def settings():
    return celery_settings(vars(config.TestingConfig()))


def test_a_hung_task_is_interrupted_then_killed_before_redis_delivers_it_again(settings):
    soft, hard = settings["task_soft_time_limit"], settings["task_time_limit"]
    assert 0 < soft < hard < settings["broker_transport_options"]["visibility_timeout"]
    # Room after the interruption to close a mail server's connection (SMTP_TIMEOUT) and roll back.
    assert hard - soft >= 2 * config.TestingConfig().SMTP_TIMEOUT


def test_the_time_limits_follow_the_settings(monkeypatch):
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", "100")
    monkeypatch.setenv("TASK_TIME_LIMIT", "130")
    settings = celery_settings(vars(config.TestingConfig()))
    assert (settings["task_soft_time_limit"], settings["task_time_limit"]) == (100, 130)


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
