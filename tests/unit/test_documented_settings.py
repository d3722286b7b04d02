"""The README's settings tables and config.py say the same: every variable the configuration reads
is documented, every documented one is read, and each documented default is the one in the code."""

import os
import re

import pytest

import config
from config import DevelopmentConfig, ProductionConfig

README = (config.BASE_DIR / "README.md").read_text(encoding="utf-8")
# A settings row: `NAME` (or several) | meaning | default(s), each default a `value`.
ROWS = re.findall(r"^\| (`[A-Z][^|]*?) \| .* \| ([^|]*) \|$", README, re.MULTILINE)
# Read by the testing configuration alone (the suite's switch for CSRF checks).
TESTING_ONLY = {"WTF_CSRF_ENABLED"}


def _names(cell: str) -> list[str]:
    return re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)


DOCUMENTED = {name for names, _ in ROWS for name in _names(names)}


class _Recorder(dict):
    """os.environ's stand-in: an empty environment that remembers each variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.asked.add(name)
        return super().__getitem__(name)


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    recorder = _Recorder()
    monkeypatch.setattr(os, "environ", recorder)
    monkeypatch.setattr(config, "DEV_SECRET_KEY_FILE", tmp_path / "secret_key")
    monkeypatch.setattr(config, "DEV_REDIS_PASSWORD_FILE", tmp_path / "redis_password")
    return recorder


def test_every_variable_the_configuration_reads_is_documented_and_every_documented_one_is_read(
    bare_environment,
):
    config.config_for("development")
    DevelopmentConfig()
    ProductionConfig()
    read = bare_environment.asked | {"APP_ENV"}  # config_for reads it from its argument
    assert sorted(read - DOCUMENTED - TESTING_ONLY) == []
    assert sorted(DOCUMENTED - read) == []


def test_each_documented_default_is_the_default_in_the_code(bare_environment):
    settings = DevelopmentConfig()
    compared = 0
    for names, defaults in ROWS:
        names, values = _names(names), re.findall(r"`([^`]*)`", defaults)
        if len(names) != len(values):
            continue  # a default told in words ("none", "system CAs", the embedded Redis)
        for name, documented in zip(names, values, strict=True):
            if name == "SECRET_KEY" or not hasattr(settings, name):
                continue  # a random key per checkout; a setting stored under another name
            assert _shown(getattr(settings, name)) == documented, name
            compared += 1
    assert compared > 50


def _shown(value) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).removeprefix(f"{config.BASE_DIR}/")  # a folder of the checkout
