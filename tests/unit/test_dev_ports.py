"""`make run` on other ports: one variable per server moves it, and the app's links, broker and
mail server move with it; a port another program holds is named before anything starts."""

import re
import socket

import pytest

import config
from config import DEV_PORTS, ConfigError, DevelopmentConfig
from leads.dev import ports

PROCFILE = (config.BASE_DIR / "Procfile.dev").read_text()


@pytest.fixture
def no_port_settings(monkeypatch, tmp_path):
    for name in (*DEV_PORTS, "BASE_URL", "REDIS_URL", "SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "DEV_REDIS_PASSWORD_FILE", tmp_path / "redis_password")
    monkeypatch.setattr(config, "DEV_SECRET_KEY_FILE", tmp_path / "secret_key")
    return monkeypatch


def test_the_development_links_broker_and_mail_server_follow_the_ports_of_make_run(no_port_settings):
    no_port_settings.setenv("DEV_WEB_PORT", "5101")
    no_port_settings.setenv("DEV_REDIS_PORT", "6491")
    no_port_settings.setenv("DEV_MAIL_PORT", "8126")
    settings = DevelopmentConfig()
    assert settings.BASE_URL == "http://127.0.0.1:5101"
    assert settings.REDIS_URL.endswith("@127.0.0.1:6491/0")
    assert settings.SMTP_PORT == 8126


def test_an_explicit_setting_still_wins_over_the_port_of_make_run(no_port_settings):
    no_port_settings.setenv("DEV_WEB_PORT", "5101")
    no_port_settings.setenv("BASE_URL", "http://quotes.test:8000")
    no_port_settings.setenv("SMTP_PORT", "2525")
    no_port_settings.setenv("DEV_MAIL_PORT", "8126")
    settings = DevelopmentConfig()
    assert (settings.BASE_URL, settings.SMTP_PORT) == ("http://quotes.test:8000", 2525)


@pytest.mark.parametrize("given", ["web", "0", "70000"])
def test_a_port_that_is_no_port_is_refused_with_its_name(no_port_settings, given):
    no_port_settings.setenv("DEV_WEB_PORT", given)
    with pytest.raises(ConfigError, match="DEV_WEB_PORT"):
        DevelopmentConfig()


def test_the_procfile_listens_where_the_app_looks_and_by_the_same_defaults():
    used = dict(re.findall(r"\$\{(DEV_[A-Z_]+_PORT):-(\d+)\}", PROCFILE))
    assert {name: int(port) for name, port in used.items()} == DEV_PORTS


def test_a_port_another_program_holds_is_named_with_the_variable_that_moves_it(no_port_settings, capsys):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        no_port_settings.setenv("DEV_REDIS_PORT", str(taken))
        assert ports.taken_ports({"DEV_REDIS_PORT": taken}) == ["DEV_REDIS_PORT"]
        assert ports.main() == 1
    said = capsys.readouterr().err
    assert f"Port {taken} (DEV_REDIS_PORT) is in use" in said
    assert f"DEV_REDIS_PORT={taken + 1} make run" in said
