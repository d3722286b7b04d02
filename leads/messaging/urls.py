"""Absolute links for emails, built from the URL map against BASE_URL.

Never from the request's Host header: a forged Host would otherwise put an attacker's address
into the links we mail to patients, providers and coordinators."""

from urllib.parse import urlsplit

from flask import current_app

from leads.messaging import tokens


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of `endpoint` under BASE_URL (works in workers, where there is no request)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def provider_link(assignment_id: int) -> str:
    """The signed link in a provider's emails, scoped to one assignment."""
    return public_url("provider.show_request", token=tokens.make_assignment_token(assignment_id))


def patient_link(lead_id: int, language: str | None = None) -> str:
    """The patient's signed link to their own page, opening in `language` when given."""
    values = {"lang": language} if language else {}
    return public_url("self_service.show", token=tokens.make_patient_token(lead_id), **values)


def staff_lead_url(lead_id: int) -> str:
    return public_url("staff.lead_detail", lead_id=lead_id)
