"""No personal data in the logs of the web, worker and beat processes, in Redis, or in the emails
to clinics: three patients carry a canary in name, email, phone and details through the whole
stack, and nothing but the database and the patient's own email may hold it."""

import email
import email.policy
import re

import redis

from tests.fault.conftest import EMAILS_PER_LEAD

CANARY = "zqxjvbwk"
LEADS = 3


def _readable(path) -> str:
    """A stored email as a reader sees it: its headers and every text part, decoded."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    parts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join([str(message), *parts])


def _redis_text(url: str) -> str:
    """Every key and value in Redis, as text (lists, strings, hashes, sets, sorted sets)."""
    client = redis.Redis.from_url(url)
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [item for pair in client.hgetall(key).items() for item in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        parts.extend(value.decode(errors="replace") for value in [key, *values] if value is not None)
    return "\n".join(parts)


def test_a_canary_in_every_personal_field_reaches_no_log_no_broker_and_no_clinic(healthy):
    stack = healthy
    tag = stack.new_tag(f"canary-{CANARY}")  # the tag is part of each patient's email address
    patients = stack.patients(tag, LEADS)
    for number, patient in enumerate(patients):
        patient["full_name"] = f"Canary {CANARY.title()} {number}"
        patient["details"] = f"Canary {CANARY} in the details, patient {number}."
    phones = [re.sub(r"\D", "", patient["phone"])[2:] for patient in patients]  # without +45
    answers = stack.send(patients)
    stack.wait_until_routed(tag, LEADS)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD)
    figures = stack.figures("a canary in name, email, phone and details", tag, {303: answers.count(303)})

    logs = {path.name: path.read_text(errors="replace") for path in stack.root.glob("*.log")}
    places = {**logs, "redis": _redis_text(stack.redis.url)}
    references = stack.references(tag)
    clinic_mail = [
        text
        for text in (_readable(path) for path in stack.sink.messages())
        if re.search(r"^To: .*@fault\.example", text, re.MULTILINE) and any(r in text for r in references)
    ]
    hits = {
        place: [needle for needle in [CANARY, *phones] if needle.lower() in text.lower()]
        for place, text in places.items()
    }
    print(f"  looked in {', '.join(sorted(places))} and {len(clinic_mail)} clinic emails")
    assert answers == [303] * LEADS and figures["routed"] == LEADS
    assert {"web.log", "worker.log", "beat1.log"} <= set(logs)
    assert {place: found for place, found in hits.items() if found} == {}
    assert len(clinic_mail) == LEADS * (EMAILS_PER_LEAD - 1)  # what each clinic was told
    assert not [mail for mail in clinic_mail if CANARY in mail.lower() or any(p in mail for p in phones)]
