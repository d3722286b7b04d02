"""Every route of the app as test parameters, and an address for each with ids that name real
rows (the `real` fixture, tests/integration/conftest.py): for tests that visit every route."""

import pytest

from tests.helpers import blueprint_routes


def route_params(endpoints=None) -> list:
    """(endpoint, method) parameters of every route, or of those of `endpoints`."""
    return list(_each_rule(endpoints))


def _each_rule(endpoints):
    for rule in sorted(blueprint_routes().url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if endpoints is None or rule.endpoint in endpoints:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield pytest.param(rule.endpoint, method, id=f"{method} {rule.rule}")


def route_url(app, endpoint, values) -> str:
    """The address of `endpoint` with the ids in `values` (the `real` fixture's)."""
    rule = next(app.url_map.iter_rules(endpoint))
    arguments = {name: values[name] for name in rule.arguments}
    if endpoint.startswith("self_service."):
        arguments["token"] = values["patient_token"]
    return rule.build(arguments, append_unknown=False)[1]
