"""Password hashing cost: argon2-cffi's own defaults in production and development, cheap
parameters only in the testing config, and every hash verifies whatever it was made with."""

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from flask import Flask

import config
from leads.auth import accounts

PASSWORD = "correct horse battery"


def _hash_under(config_class) -> str:
    """A hash made under `config_class`'s settings (a bare Flask app holding them)."""
    app = Flask(__name__)
    app.config.from_object(config_class())
    with app.app_context():
        return accounts.hash_password(PASSWORD)


@pytest.mark.parametrize("config_class", [config.ProductionConfig, config.DevelopmentConfig])
def test_production_and_development_hash_with_argon2_cffis_defaults(config_class):
    library_defaults = extract_parameters(PasswordHasher().hash(PASSWORD))
    assert extract_parameters(_hash_under(config_class)) == library_defaults


def test_the_testing_config_hashes_cheaply_but_still_with_argon2id():
    parameters = extract_parameters(_hash_under(config.TestingConfig))
    assert parameters.type is Type.ID
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (1, 8, 1)


@pytest.mark.parametrize("made_under", [config.ProductionConfig, config.TestingConfig])
@pytest.mark.parametrize("checked_under", [config.ProductionConfig, config.TestingConfig])
def test_a_hash_verifies_whatever_parameters_it_was_made_with(made_under, checked_under):
    stored = _hash_under(made_under)
    app = Flask(__name__)
    app.config.from_object(checked_under())
    with app.app_context():
        assert accounts.verify_password(stored, PASSWORD)
        assert not accounts.verify_password(stored, PASSWORD + "!")
