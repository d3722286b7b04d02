"""Provider emails' templates and idempotency keys, and what a key says the email is about (an
assignment or a quote): an email row has no assignment column. Pure: no Flask, no database."""

# Every email about a lead to a provider uses a template named so; the sharing rule guards them.
PROVIDER_TEMPLATE_PREFIX = "provider_"

# Idempotency keys of provider emails, `<prefix>:<id>:…:<address>`, by kind (the template's name
# after `provider_`): one per assignment, or per quote (of one assignment), kind and address.
KEY_PREFIXES = {
    "notification": "assign",
    "reminder": "reminder",
    "quote_reminder": "quote-reminder",
    "quote_chosen": "quote-chosen",
    "quote_renewal": "renewal",
}
# The kinds whose key names a quote rather than an assignment.
QUOTE_KINDS = frozenset({"quote_chosen", "quote_renewal"})


def notification_key_prefix(assignment_id: int) -> str:
    """What the keys of an assignment's notification emails (one per address) start with."""
    return f"{KEY_PREFIXES['notification']}:{assignment_id}:"


def notified_assignment_id(idempotency_key: str) -> int | None:
    """The assignment a notification email told its provider about, from the email's key."""
    prefix, _, rest = idempotency_key.partition(":")
    assignment_id = rest.partition(":")[0]
    if prefix != KEY_PREFIXES["notification"] or not assignment_id.isdigit():
        return None
    return int(assignment_id)


def assignment_or_quote(template: str, idempotency_key: str) -> tuple[str, int] | None:
    """What a provider email is about, read from its template and key: ("assignment", id) or
    ("quote", id); None for any other email (a resend's key names the email it repeats)."""
    kind = template.removeprefix(PROVIDER_TEMPLATE_PREFIX)
    prefix = KEY_PREFIXES.get(kind) if template.startswith(PROVIDER_TEMPLATE_PREFIX) else None
    if prefix is None or not idempotency_key.startswith(prefix + ":"):
        return None
    named = idempotency_key[len(prefix) + 1 :].partition(":")[0]
    if not named.isdigit():
        return None
    return ("quote" if kind in QUOTE_KINDS else "assignment", int(named))
