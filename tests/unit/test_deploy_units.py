"""The production units restart what stops, and exactly one of them runs beat."""

import configparser
import runpy
import shlex
from pathlib import Path

import pytest
from gunicorn.config import Config as GunicornConfig

import config

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
GUNICORN = runpy.run_path(str(config.BASE_DIR / "gunicorn.conf.py"))


def _unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", ["quotes-web.service", "quotes-worker.service", "quotes-beat.service"])
def test_every_unit_restarts_always_and_never_gives_up(name):
    unit = _unit(name)
    assert unit["Service"]["Restart"] == "always"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"


def test_only_the_beat_unit_runs_beat():
    commands = {path.name: _unit(path.name)["Service"]["ExecStart"] for path in UNITS.glob("*.service")}
    assert [name for name, command in commands.items() if " beat " in command] == ["quotes-beat.service"]
    assert " worker " in commands["quotes-worker.service"]


def _seconds(value: str) -> int:
    assert value.isdigit(), f"write TimeoutStopSec in plain seconds, not {value!r}"
    return int(value)


def test_stopping_the_worker_signals_celerys_main_process_alone_and_waits_out_its_tasks():
    service = _unit("quotes-worker.service")["Service"]
    # control-group (the default) also sends SIGTERM to the pool processes, killing their tasks.
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    # Celery kills a task still running at TASK_TIME_LIMIT; systemd's SIGKILL comes after that.
    assert _seconds(service["TimeoutStopSec"]) > config.TestingConfig().TASK_TIME_LIMIT + 10


def test_stopping_the_web_lets_gunicorn_finish_the_requests_it_serves():
    service = _unit("quotes-web.service")["Service"]
    assert service["KillMode"] == "mixed"
    assert _seconds(service["TimeoutStopSec"]) > GUNICORN["graceful_timeout"] + 5


def test_the_web_unit_starts_gunicorn_without_a_control_socket():
    """gunicorn would make it under $HOME, which the service's user has not, and warn at each
    start. Read with the installed gunicorn's own parser, so a misspelt option fails here."""
    command = shlex.split(_unit("quotes-web.service")["Service"]["ExecStart"])
    assert Path(command[0]).name == "gunicorn"
    options = GunicornConfig().parser().parse_args(command[1:])
    assert options.control_socket_disable is True
    assert options.args == ["wsgi:app"]


def test_a_web_request_gives_up_on_the_database_before_gunicorn_kills_its_worker():
    settings = config.ProductionConfig()
    waits = {
        "a statement": settings.DATABASE_WEB_STATEMENT_TIMEOUT,
        "a lock": settings.DATABASE_WEB_LOCK_TIMEOUT,
        # A pooled connection to a vanished server fails, then a new one cannot connect.
        "a lost server": settings.DATABASE_TCP_TIMEOUT + settings.DATABASE_CONNECT_TIMEOUT,
    }
    assert all(wait < GUNICORN["timeout"] for wait in waits.values()), waits
