"""The production units restart what stops, and exactly one of them runs beat."""

import configparser
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


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
