"""The message as it goes to the mail server: what a mail client reads back out of it."""

import io
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from types import SimpleNamespace

import pytest

from leads.messaging.email import build_mime

SENDER = "Quotes <quotes@example.org>"


def _email(**changes):
    fields = {
        "id": 7,
        "to_address": "klinik@example.dk",
        "reply_to": "coordinators@example.org",
        "subject": "Ny anmodning om tilbud Q-ABC234 — خطوة",
        "body_text": "Hej Aarhus,\nEn patient beder om et tilbud på behandling.\nمرحبا\n",
        "body_html": "<p>Hej Aarhus, <b>behandling</b> ø</p>\n",
        "message_id": "<q-abc234.7@example.org>",
    }
    return SimpleNamespace(**{**fields, **changes})


def _on_the_wire(message, utf8=False) -> bytes:
    out = io.BytesIO()
    generator_policy = message.policy.clone(utf8=True) if utf8 else message.policy
    BytesGenerator(out, policy=generator_policy).flatten(message, linesep="\r\n")
    return out.getvalue()


def _read_back(raw: bytes):
    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    return message, text, html


def test_headers_and_both_parts_read_back_as_written_in_any_script():
    email = _email()
    raw = _on_the_wire(build_mime(email, SENDER))
    message, text, html = _read_back(raw)
    assert (message["Subject"], message["To"], message["Reply-To"]) == (
        email.subject,
        email.to_address,
        email.reply_to,
    )
    assert (message["From"], message["Message-ID"]) == (SENDER, email.message_id)
    assert message["Date"] is not None
    assert (text, html) == (email.body_text, email.body_html)
    # The bodies travel as readable UTF-8, not base64.
    assert b"En patient beder om et tilbud" in raw and "ø".encode() in raw


def test_a_line_longer_than_smtp_allows_goes_quoted_printable_and_reads_back_whole():
    long_html = "<p>" + "behandling ø " * 200 + "</p>\n"  # one line of about 2,600 bytes
    raw = _on_the_wire(build_mime(_email(body_html=long_html), SENDER))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message, text, html = _read_back(raw)
    assert html == long_html
    assert message.get_body(("html",))["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "8bit"


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hello\r\nBcc: someone@example.net"},
        {"to_address": "klinik@example.dk\nBcc: someone@example.net"},
        {"reply_to": "a@example.org\rX-Injected: yes"},
    ],
)
def test_a_header_with_a_line_break_is_refused_not_sent(changes):
    with pytest.raises(ValueError):
        build_mime(_email(**changes), SENDER)


@pytest.mark.parametrize("changes", [{"to_address": "jørgen@eksempel.dk"}, {"reply_to": "kø@example.org"}])
def test_an_address_in_unicode_is_written_for_smtputf8(changes):
    email = _email(**changes)
    message = build_mime(email, SENDER)
    raw = _on_the_wire(message, utf8=True)
    [address] = changes.values()
    assert address.encode() in raw  # written as UTF-8, not as an encoded word
    read, text, html = _read_back(raw)
    assert (read["To"], read["Reply-To"], read["Subject"]) == (
        email.to_address,
        email.reply_to,
        email.subject,
    )
    assert (text, html) == (email.body_text, email.body_html)
    with pytest.raises(ValueError):
        build_mime(_email(**changes, subject="a\nBcc: someone@example.net"), SENDER)
