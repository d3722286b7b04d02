"""What a provider email is about, read from its template and idempotency key: the erasure and
withdrawal notices go to every (assignment, address) a provider email reached."""

from pathlib import Path

import pytest

from leads.messaging.email import assignment_named, resend_key_parent
from leads.messaging.provider_keys import KEY_PREFIXES, PROVIDER_TEMPLATE_PREFIX, assignment_or_quote

EMAIL_TEMPLATES = Path(__file__).parents[2] / "templates" / "email"


def test_every_provider_template_has_a_key_that_says_what_it_is_about():
    templates = EMAIL_TEMPLATES.glob(f"{PROVIDER_TEMPLATE_PREFIX}*.txt")
    kinds = {path.stem.removeprefix(PROVIDER_TEMPLATE_PREFIX) for path in templates}
    assert kinds == set(KEY_PREFIXES)


@pytest.mark.parametrize(
    ("template", "key", "about"),
    [
        ("provider_notification", "assign:12:clinic@example.dk", ("assignment", 12)),
        ("provider_reminder", "reminder:12:clinic@example.dk", ("assignment", 12)),
        ("provider_quote_reminder", "quote-reminder:12:clinic@example.dk", ("assignment", 12)),
        ("provider_quote_chosen", "quote-chosen:7:clinic@example.dk", ("quote", 7)),
        ("provider_quote_renewal", "renewal:7:2:clinic@example.dk", ("quote", 7)),
        ("provider_notification", "resend:40:1", None),
        ("patient_quote_reminder", "quote-reminder:12:patient", None),
        ("notice_provider_not_chosen", "not-chosen:12:clinic@example.dk", None),
        ("provider_reminder", "assign:12:clinic@example.dk", None),
    ],
)
def test_a_provider_emails_template_and_key_name_its_assignment_or_quote(template, key, about):
    assert assignment_or_quote(template, key) == about


def test_a_resend_key_names_the_email_it_repeats():
    assert resend_key_parent("resend:40:2") == 40
    assert resend_key_parent("assign:40:clinic@example.dk") is None


EMAILS = {
    40: ("provider_notification", "assign:12:clinic@example.dk"),
    41: ("provider_notification", "resend:40:1"),
    42: ("provider_notification", "resend:41:1"),  # a resend of the resend
    43: ("provider_quote_chosen", "quote-chosen:7:clinic@example.dk"),
    44: ("provider_notification", "resend:45:1"),  # its original is not among the lead's
    46: ("provider_notification", "resend:47:1"),
    47: ("provider_notification", "resend:46:1"),  # a loop
}


@pytest.mark.parametrize(
    ("email_id", "assignment"), [(40, 12), (41, 12), (42, 12), (43, 5), (44, None), (46, None)]
)
def test_a_provider_email_names_its_assignment_through_its_quote_or_its_resends_original(
    email_id, assignment
):
    assert assignment_named(*EMAILS[email_id], EMAILS.get, {7: 5}.get) == assignment
