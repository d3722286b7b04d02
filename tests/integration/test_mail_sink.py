"""The SMTP sink the whole run shares: each test finds it answering well, whatever the test
before it made it do."""

import smtplib
from contextlib import suppress

from leads.dev.mailsink import MailSink

HOOKS_LEFT = []


def _send(sink: MailSink) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as smtp:
        smtp.sendmail("quotes@example.org", ["clinic@example.org"], "Subject: test\r\n\r\nHello\r\n")


def _settings(sink: MailSink) -> dict:
    """What a test may set (not where it keeps messages, its port, or its count of QUITs)."""
    return {name: value for name, value in vars(sink).items() if name not in ("directory", "port", "quits")}


def test_a_test_may_leave_the_sink_losing_its_answers_and_calling_back(app, mail_sink):
    """Left set on purpose: the next test must not find them."""
    mail_sink.drop_before_answer = True
    mail_sink.on_kept = lambda envelope, session: HOOKS_LEFT.append(envelope.rcpt_tos)
    mail_sink.delay["clinic@example.org"] = 0.01
    with suppress(smtplib.SMTPServerDisconnected):  # the message kept, its answer lost
        _send(mail_sink)
    assert HOOKS_LEFT == [["clinic@example.org"]]
    assert len(mail_sink.messages()) == 1


def test_the_next_test_finds_the_sink_answering_well_with_no_hook(app, mail_sink, tmp_path):
    assert _settings(mail_sink) == _settings(MailSink(tmp_path))
    called_before = len(HOOKS_LEFT)
    _send(mail_sink)  # answered: no connection dropped
    assert len(mail_sink.messages()) == 1
    assert len(HOOKS_LEFT) == called_before  # the earlier test's hook is not called


def test_reset_puts_back_every_setting_a_fresh_sink_has(tmp_path):
    sink = MailSink(tmp_path / "used")
    sink.refuse["a@example.org"] = "550 5.1.1 No such user"
    sink.delay["a@example.org"] = 1.0
    sink.answer_all = sink.answer_mail = sink.answer_data = "451 4.3.0 Try again later"
    sink.drop_before_answer = True
    sink.on_kept = print
    sink.reset()
    assert _settings(sink) == _settings(MailSink(tmp_path / "fresh"))
