"""Email: one renderer for .txt + .html template pairs, queued rows, SMTP delivery with
database-scheduled back-off."""

import contextlib
import itertools
import logging
import random
import smtplib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from email import policy
from email.charset import QP, Charset
from email.errors import MessageError
from email.message import EmailMessage as PolicyMessage
from email.message import Message as MimeMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import NamedTuple

import jinja2
import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale

from config import record_margin
from leads.extensions import commits_a_power_loss_may_undo, db, look_ups_first, refuse_if_read_only
from leads.i18n import DEFAULT_LANGUAGE, patient_language
from leads.messaging import outbox
from leads.messaging.provider_keys import PROVIDER_TEMPLATE_PREFIX, assignment_or_quote
from leads.messaging.smtp_connection import Conversation, NotOffered, send_on_open_connection
from leads.messaging.urls import public_url, staff_lead_url
from leads.models import Assignment, Consent, EmailMessage, EmailStatus, Lead, Quote
from leads.notes import SAID, Note, fixed, verbatim
from leads.timeutil import utcnow
from leads.workflow import ENGAGED, sharing_refusal

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
# What keeps an email from being made (`_fail_unmade`): a template gone, a catalog's broken
# placeholder, a header with a line break. Nothing else is caught there: the database's errors are
# tried again as such, and a task's time limit (an Exception to Celery) must reach the task.
UNMADE = (jinja2.TemplateError, LookupError, ValueError, TypeError, MessageError)
# Idempotency keys of a coordinator's resends: resend:<id of the email repeated>:<n>.
RESEND_PREFIX = "resend:"
# 530: STARTTLS or authentication required; 534/535: authentication mechanism or credentials.
OPERATOR_CODES = frozenset({530, 534, 535})
# The enhanced status of a refusal on policy grounds (RFC 3463 X.7.x: not authorised, relaying
# denied): the sending side's setting, not the recipient's address.
NOT_AUTHORISED = "5.7."


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# Renderings made ahead of their claims (`_WordsAhead`): email id -> (the context rendered, the words).
_Rendered = dict[int, tuple[dict, RenderedEmail]]


def render_email(template: str, language: str = DEFAULT_LANGUAGE, **context) -> RenderedEmail:
    """Render templates/email/<template>.txt and .html in `language`; the .txt sets `subject`.
    Every email may link the privacy notice (`privacy_url`)."""
    context.setdefault("privacy_url", public_url("public.privacy"))
    with force_locale(language):
        text_template = current_app.jinja_env.get_template(f"email/{template}.txt")
        module = text_template.make_module(context)
        subject = " ".join(str(getattr(module, "subject", "")).split())
        if not subject:
            raise ValueError(f"email/{template}.txt does not set a subject")
        html = render_template(f"email/{template}.html", subject=subject, **context)
        return RenderedEmail(subject=subject, text=str(module).strip() + "\n", html=html)


def queue_email(
    *,
    template: str,
    to: str,
    idempotency_key: str,
    lead_id: int | None = None,
    reply_to: str | None = None,
    language: str = DEFAULT_LANGUAGE,
    render_later: bool = False,
    new_key: bool = False,
    in_send_task: bool = True,
    **context,
) -> int:
    """Add an email in `language` (and its send task) to the caller's transaction, once per key;
    the email's id (the earlier one's, for a key already used).

    `render_later`: store what renders it (`context` must then be plain JSON) and let the worker
    that sends it render it, so that a request a person waits on does not.
    `new_key`: the key names a row the caller's transaction makes, so no email can have it yet
    and it is not looked up (the key's unique constraint still holds).
    `in_send_task`: False leaves the send to a task of the caller's that carries the id (`add_email`).
    """
    if not new_key:
        existing = db.session.scalar(
            sa.select(EmailMessage.id).where(EmailMessage.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return existing
    if render_later:
        return add_email(
            idempotency_key=idempotency_key,
            template=template,
            to_address=to,
            reply_to=reply_to,
            subject="",
            body_text="",
            body_html="",
            render_context={"template": template, "language": language, "context": context},
            lead_id=lead_id,
            in_send_task=in_send_task,
        )
    rendered = render_email(template, language, **context)
    return add_email(
        idempotency_key=idempotency_key,
        template=template,
        to_address=to,
        reply_to=reply_to,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        lead_id=lead_id,
        in_send_task=in_send_task,
    )


def render_pending(email, rendered: _Rendered | None = None) -> bool:
    """Put the words into an email queued with `render_later` (an EmailMessage row, whose flush
    keeps them, or what `_claim` read of one, which the sender stores); False for one rendered
    when it was queued. `rendered`: what was made of it ahead of its claim (`_WordsAhead`), used
    while the row still holds that context."""
    pending = email.render_context
    if not pending:
        return False
    made = (rendered or {}).get(email.id)
    words = made[1] if made is not None and made[0] == pending else _render_context(pending)
    email.subject, email.body_text, email.body_html = words.subject, words.text, words.html
    email.render_context = None
    return True


def _render_context(pending: dict) -> RenderedEmail:
    return render_email(pending["template"], pending["language"], **pending["context"])


_INSERT_EMAIL = EmailMessage.__table__.insert()


def add_email(*, in_send_task: bool = True, **fields) -> int:
    """The one place an EmailMessage row is made: a fresh Message-ID, the safety net, and its place
    in the send task of the caller's transaction (every email it queues goes out in one task).

    The row is written at once on the transaction's connection (a prepared INSERT: the unit of
    work's flush cost more than the rest of queueing an email); its id is returned.
    `in_send_task`: False when the caller's own task carries the id to the senders instead (the
    intake's routing task carries the patient's confirmation: one broker message per form); if
    that hand-over is lost, the due-email sweep sends it after the safety net, as for any email.
    """
    refuse_if_read_only()
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2].strip(" >") or "localhost"
    # A queued email whose task was lost is picked up by the due-email sweep after the safety net.
    safety_net = timedelta(seconds=current_app.config["EMAIL_SAFETY_NET_SECONDS"])
    row = {**fields, "message_id": make_msgid(domain=domain), "next_attempt_at": utcnow() + safety_net}
    email_id = db.session.connection().execute(_INSERT_EMAIL, row).inserted_primary_key[0]
    if in_send_task:
        outbox.add_to_batch(send_task_for(fields["template"]), "email_ids", email_id)
    return email_id


def resend_key_parent(key: str) -> int | None:
    """The id of the email a resend key repeats, or None for an original email."""
    if not key.startswith(RESEND_PREFIX):
        return None
    parent = key[len(RESEND_PREFIX) :].split(":", 1)[0]
    return int(parent) if parent.isdigit() else None


def send_task_for(template: str) -> str:
    """The task that sends an email: one per transaction and kind, provider emails ahead of the rest."""
    return (
        outbox.SEND_PROVIDER_EMAILS if template.startswith(PROVIDER_TEMPLATE_PREFIX) else outbox.SEND_EMAILS
    )


def email_coordinators(lead, *, template: str, idempotency_key: str, summary, note: str | None = None) -> int:
    """Tell the coordinators about something on `lead`, with a link to its staff page, in the
    language chosen for their mailbox (`COORDINATOR_EMAIL_LANGUAGE`); `summary` is a lazy text,
    translated as the email is made."""
    return queue_email(
        template=template,
        to=current_app.config["COORDINATOR_EMAIL"],
        language=coordinator_language(),
        lead_id=lead.id,
        idempotency_key=idempotency_key,
        reference=lead.reference,
        summary=summary,
        note=note,
        lead_url=staff_lead_url(lead.id),
    )


def coordinator_language() -> str:
    """The language of the coordinators' shared mailbox (checked at start: English or Danish)."""
    return current_app.config.get("COORDINATOR_EMAIL_LANGUAGE") or DEFAULT_LANGUAGE


def email_patient(lead, *, template: str, idempotency_key: str, **context) -> int:
    """An email to the patient in their language (English when we don't write theirs), Reply-To
    the coordinators, with their reference and name; a `link` in `context` is theirs to pass."""
    return queue_email(
        template=template,
        to=lead.email,
        lead_id=lead.id,
        idempotency_key=idempotency_key,
        reply_to=current_app.config["COORDINATOR_EMAIL"],
        language=patient_language(lead.preferred_language),
        reference=lead.reference,
        full_name=lead.full_name,
        **context,
    )


# Bodies go as 8-bit UTF-8, readable in any client's source view, or quoted-printable when a line
# is longer than SMTP allows (998 bytes). The classic MIME classes: the policy-based message built
# and flattened the same message at three times their cost, a quarter of a sender's CPU.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = None
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
SMTP_LINE_LIMIT = 998


def build_mime(email, mail_from: str) -> MimeMessage:
    """The message as sent (`email`: an EmailMessage row, or what `_claim` read of one). Headers
    come from the email package, never concatenation, and none may carry a line break. An address
    in Unicode (`jørgen@…`) needs SMTPUTF8, which the policy-based message writes (`smtp_send`
    asks the server for it)."""
    headers = {
        "Subject": email.subject,
        "From": mail_from,
        "To": email.to_address,
        "Reply-To": email.reply_to or None,
        "Date": formatdate(usegmt=True),
        "Message-ID": email.message_id,
    }
    headers = {name: value for name, value in headers.items() if value is not None}
    if not (headers["To"] + headers["From"] + headers.get("Reply-To", "")).isascii():
        return _international_mime(headers, email.body_text, email.body_html)
    message = MIMEMultipart("alternative")
    for name, value in headers.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"the {name} header of email {email.id} holds a line break")
        message[name] = value
    message.attach(_text_part(email.body_text, "plain"))
    message.attach(_text_part(email.body_html, "html"))
    return message


def _text_part(body: str, subtype: str) -> MIMEText:
    too_long = any(len(line.encode()) > SMTP_LINE_LIMIT for line in body.splitlines())
    return MIMEText(body, subtype, _UTF8_QP if too_long else _UTF8)


def _international_mime(headers: dict[str, str], text: str, html: str) -> MimeMessage:
    message = PolicyMessage(policy=policy.SMTPUTF8)  # refuses a header with a line break
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class SmtpFailure(Exception):
    """A delivery that failed: its English text, for the email row (`last_error`; a bounce's starts
    with the server's code, `hard_bounced`), and what it says (`said`, a note worded in each
    reader's language around the server's answer; by default only that answer, framed)."""

    def __init__(self, text: str, said: Note | None = None) -> None:
        super().__init__(text)
        self.said = said if said is not None else _answered("mail_answered", text)


class TransientSmtpError(SmtpFailure):
    """Try again later: connection trouble or a 4xx answer. `may_have_arrived`: the message went
    (DATA) and no answer came back, so the server may have kept it."""

    def __init__(self, text: str, said: Note | None = None, *, may_have_arrived: bool = False) -> None:
        super().__init__(text, said)
        self.may_have_arrived = may_have_arrived


class PermanentSmtpError(SmtpFailure):
    """Do not try again: a 5xx answer."""


def _answered(what: str, answer: str) -> Note:
    """The sender's class of a failure (`what`, a note of `leads.notes.SAID`) and the server's answer."""
    return Note(what, answer=verbatim(answer))


def smtp_send(message: MimeMessage, conversation: Conversation | None = None) -> None:
    """Send one message to its one recipient, within `conversation`'s deadline; classify any failure."""
    config = current_app.config
    try:
        send_on_open_connection(message, config, conversation)
    except smtplib.SMTPRecipientsRefused as exc:
        code, answer = next(iter(exc.recipients.values()))
        _raise_for_code(code, answer, refused="mail_bounced")
    except smtplib.SMTPAuthenticationError as exc:
        # Wrong credentials are the operator's to fix; keep the mail until they do.
        code = str(exc.smtp_code)
        raise TransientSmtpError(
            f"authentication failed ({code})", _answered("mail_sign_in_refused", code)
        ) from exc
    except smtplib.SMTPSenderRefused as exc:
        if not 500 <= exc.smtp_code < 600 or exc.smtp_code in OPERATOR_CODES:
            _raise_for_code(exc.smtp_code, exc.smtp_error)  # try again later; or STARTTLS, authentication
        # Our own address refused for good: a setting to fix, not the recipient's; keep the mail.
        answer = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        raise TransientSmtpError(
            f"sender address refused: {answer} (check MAIL_FROM)", _answered("mail_sender_refused", answer)
        ) from exc
    except smtplib.SMTPDataError as exc:
        if 500 <= exc.smtp_code < 600 and not _ours_to_fix(exc.smtp_code, _text(exc.smtp_error)):
            # The message refused, not the address: it fails, and counts as no bounce of the address.
            answer = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise PermanentSmtpError(
                f"message refused: {answer}", _answered("mail_message_refused", answer)
            ) from exc
        _raise_for_code(exc.smtp_code, exc.smtp_error)
    except smtplib.SMTPResponseException as exc:
        _raise_for_code(exc.smtp_code, exc.smtp_error)
    except (smtplib.SMTPException, OSError) as exc:
        # No answer: after DATA, the server may have kept the message all the same.
        error = _unanswered(exc, conversation)
        raise TransientSmtpError(
            error,
            Note("mail_unreachable", error=verbatim(error)),
            may_have_arrived=conversation is not None and conversation.data_sent,
        ) from exc


def _unanswered(error: Exception, conversation: Conversation | None) -> str:
    said = f"{type(error).__name__}: {error}"
    if isinstance(error, NotOffered):
        return f"not offered to the server: {error}"
    if conversation is not None and time.monotonic() >= conversation.ends_by:
        return f"{said} (the conversation was ended at the time its claim allows)"
    return said


def _text(answer) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)


def _ours_to_fix(code: int, text: str) -> bool:
    """A refusal that names a setting of ours: STARTTLS or authentication first, or a policy refusal
    (enhanced status 5.7.x: relaying denied, our domain's SPF or DMARC)."""
    return code in OPERATOR_CODES or (500 <= code < 600 and text.startswith(NOT_AUTHORISED))


def _raise_for_code(code: int, answer, refused: str = "mail_refused") -> None:
    """A refusal: permanent for a 5xx answer (for a recipient, the address bounced: `hard_bounced`;
    `refused` says which), unless it names a setting of ours to fix (`_ours_to_fix`), which is
    tried again."""
    text = _text(answer)
    answer = f"{code} {text}"
    if code in OPERATOR_CODES:
        # The server wants STARTTLS or authentication first: a setting to fix, not a bad address.
        raise TransientSmtpError(
            f"{answer} (check SMTP_TLS, SMTP_USERNAME and SMTP_PASSWORD)",
            _answered("mail_needs_sign_in", answer),
        )
    if _ours_to_fix(code, text):
        # "5.7.1 Relaying denied": our relay will not take mail from us for anyone; were it counted
        # as every clinic's address bouncing, every lead would be re-routed and every clinic paused.
        raise TransientSmtpError(
            f"{answer} (check SMTP_HOST, SMTP_USERNAME and MAIL_FROM)",
            _answered("mail_policy_refused", answer),
        )
    if 500 <= code < 600:
        raise PermanentSmtpError(answer, _answered(refused, answer))
    raise TransientSmtpError(answer, _answered("mail_temporary", answer))


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """Exponential back-off with jitter, capped at an hour between attempts."""
    ceiling = min(timedelta(seconds=base_seconds * 2 ** (attempts - 1)), MAX_BACKOFF)
    return ceiling * random.uniform(0.5, 1.0)


def deliver_email(email_id: int) -> str:
    """Send a queued email once; return its status afterwards (or 'skipped')."""
    return deliver_emails([email_id])[email_id]


def deliver_emails(email_ids: list[int], interrupted_at: float | None = None) -> dict[int, str]:
    """Send each queued email once, one after the other over one SMTP connection; return each
    one's status afterwards ('skipped' when it was not ours to send, HANDED_ON when a new task
    sends it).

    Each email is claimed in the transaction that records the previous one's outcome, so only the
    email being handed to the server is ever claimed: a worker dying mid-batch leaves at most that
    one sent and unrecorded, as for a single email, and the rest simply queued for the task's
    redelivery. Each conversation ends before its claim lapses (`_conversation`), and DATA goes
    only after a transaction of its own marks it (`_mark_data_sent`): a batch of n costs 2n + 1
    transactions. An email that cannot be made (its template or catalog does not render, a header
    cannot be written) fails alone (`_fail_unmade`).

    `interrupted_at`: when the caller, a task, is interrupted at its soft time limit
    (time.monotonic()). No email is claimed whose claim could last past it (`_last_claim_moment`),
    so the interruption finds none between the server's acceptance and the record (unless its
    record waited for the database past the margin); the emails not reached by then go to a new
    task at once (`_hand_on`).
    """
    results: dict[int, str] = {}
    waiting = list(dict.fromkeys(email_ids))
    given = len(waiting)
    claim_until = _last_claim_moment(interrupted_at)
    words = _WordsAhead(waiting)
    # A claim or an outcome a power loss undoes only sends the email again: at least once.
    with commits_a_power_loss_may_undo():
        words.render_next(waiting)
        claimed = _claim_next(waiting, results, words, claim_until)
        db.session.commit()
        while claimed is not None:
            email, message = claimed
            error: Exception | None = None
            # The next email's words before this one goes: once the server has accepted it, only
            # recording its outcome stands between the acceptance and the record.
            words.render_next(waiting)
            try:
                smtp_send(message, _conversation(email))
            except SmtpFailure as exc:
                error = exc
            claimed = _record_and_claim_next(email, error, waiting, results, words, claim_until)
    if waiting:
        _hand_on(waiting, results, publish=len(waiting) < given)
    return results


# What `deliver_emails` says of an email it left unclaimed, its time running out, for a new task
# (or, when it cannot publish one, the due-email sweep).
HANDED_ON = "handed_on"
LEFT_TO_SWEEP = "left_to_sweep"  # not reached before its last claim moment, for the due-email sweep


def _last_claim_moment(interrupted_at: float | None) -> float | None:
    """The last moment (time.monotonic()) to claim an email in a task interrupted at
    `interrupted_at`: a claim lasts EMAIL_CLAIM_TIMEOUT_SECONDS, which holds the conversation and
    the record of its outcome, tried again until its margin before the claim lapses; claimed
    later, the email could be in the server's hands, or accepted and not yet recorded, when the
    interruption comes, and would go out again."""
    if interrupted_at is None:
        return None
    return interrupted_at - current_app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"]


def _hand_on(email_ids: list[int], results: dict[int, str], *, publish: bool) -> None:
    """Give the emails a batch did not reach before its last claim moment to new send tasks, at
    once: unclaimed, they would otherwise wait for the due-email sweep, which takes an email not
    yet tried only after its safety net (EMAIL_SAFETY_NET_SECONDS after it was queued). A broker
    that refuses leaves them to that sweep, as for any send task lost; so does `publish` False
    (the task reached none of its emails), so that a task given too little time for one claim
    does not publish itself again and again. Each gets HANDED_ON in `results` when a task was
    published for it, LEFT_TO_SWEEP when not ('skipped' when not due)."""
    with look_ups_first():
        templates = dict(
            db.session.execute(_CLAIMABLE_TEMPLATES, {"email_ids": email_ids, "now": utcnow()}).all()
        )
    db.session.rollback()  # no transaction stays open while the tasks are published
    left = [email_id for email_id in email_ids if email_id in templates]  # in the batch's order
    if not publish:
        results.update(
            (email_id, LEFT_TO_SWEEP if email_id in templates else "skipped") for email_id in email_ids
        )
        if left:
            log.warning("emails %s left to the due-email sweep: the task had no time to claim one", left)
        return
    results.update((email_id, HANDED_ON if email_id in templates else "skipped") for email_id in email_ids)
    if not left:
        return
    log.info("emails %s handed on to a new task: this one's soft time limit nears", left)
    for task_name, batch in _as_send_tasks((email_id, templates[email_id]) for email_id in left):
        try:
            publish_send(task_name, batch)
        except Exception as exc:  # any broker failure
            log.warning("emails %s left to the due-email sweep (%s)", batch, type(exc).__name__)


@dataclass(slots=True)
class _Claimed:
    """What the sender needs of an email it claimed (read by the claim itself)."""

    id: int
    lead_id: int | None
    template: str
    idempotency_key: str  # what a provider email is about (`provider_email_assignments`)
    status: str
    to_address: str
    reply_to: str | None
    subject: str
    body_text: str
    body_html: str
    message_id: str
    render_context: dict | None
    claimed_at: datetime  # this claim's, as stored: the outcome is written only while it holds
    # As the claim found it: set when an earlier attempt sent DATA and never heard the answer.
    data_sent_at: datetime | None


# The sender's statements, made once: each email costs a claim and an outcome, and building the
# statements anew took as long as running them.
_EMAIL = EmailMessage.__table__
_NOW = sa.bindparam("now", type_=_EMAIL.c.claimed_at.type)
_THIS_EMAIL = _EMAIL.c.id == sa.bindparam("email_id")
# Queued, and due: a first attempt at once, a retry at its time.
_CLAIMABLE = sa.and_(
    _EMAIL.c.status == EmailStatus.QUEUED.value,
    sa.or_(_EMAIL.c.attempts == 0, _EMAIL.c.next_attempt_at <= _NOW),
)
_CLAIM = (
    sa.update(_EMAIL)
    .where(_THIS_EMAIL, _CLAIMABLE)
    # The attempt counts before the server is reached, so a crash mid-send still shows it.
    .values(status=EmailStatus.SENDING.value, claimed_at=_NOW, attempts=_EMAIL.c.attempts + 1)
    .returning(*(_EMAIL.c[field.name] for field in fields(_Claimed)))
)
_STORE_WORDS = (
    sa.update(_EMAIL)
    .where(_THIS_EMAIL)
    .values(
        subject=sa.bindparam("words_subject"),
        body_text=sa.bindparam("words_text"),
        body_html=sa.bindparam("words_html"),
        render_context=sa.null(),
    )
)
_END_UNSENT = (
    sa.update(_EMAIL)
    .where(_THIS_EMAIL)
    # Never offered to the server: the claim's attempt is taken back.
    .values(
        status=sa.bindparam("status"),
        claimed_at=None,
        last_error=sa.bindparam("why"),
        last_error_data=sa.bindparam("said", type_=_EMAIL.c.last_error_data.type),
        attempts=_EMAIL.c.attempts - 1,
    )
)
# The outcome is written only while the claim that sent the email holds: one that lapsed may have
# been taken back by the sweep (`_take_back_abandoned_claims`) and the email given to another sender.
_OUR_CLAIM = sa.and_(
    _THIS_EMAIL,
    _EMAIL.c.status == EmailStatus.SENDING.value,
    _EMAIL.c.claimed_at == sa.bindparam("claim", type_=_EMAIL.c.claimed_at.type),
)
_RECORD_SENT = (
    sa.update(_EMAIL)
    .where(_OUR_CLAIM)
    .values(
        status=EmailStatus.SENT.value,
        sent_at=_NOW,
        claimed_at=None,
        last_error=None,
        last_error_data=sa.null(),
        data_sent_at=None,
    )
    .returning(_EMAIL.c.attempts)
)
# Right before DATA (`_mark_data_sent`); an earlier attempt's mark, whose answer never came, is kept.
_MARK_DATA_SENT = (
    sa.update(_EMAIL).where(_OUR_CLAIM).values(data_sent_at=sa.func.coalesce(_EMAIL.c.data_sent_at, _NOW))
)
_RELEASE_CLAIM = sa.update(_EMAIL).where(_OUR_CLAIM).values(claimed_at=None).returning(_EMAIL.c.id)
_CLAIMABLE_CONTEXTS = sa.select(_EMAIL.c.id, _EMAIL.c.render_context).where(
    _EMAIL.c.id.in_(sa.bindparam("email_ids", expanding=True)), _CLAIMABLE
)
_CLAIMABLE_TEMPLATES = sa.select(_EMAIL.c.id, _EMAIL.c.template).where(
    _EMAIL.c.id.in_(sa.bindparam("email_ids", expanding=True)), _CLAIMABLE
)
# What the sharing rule reads of a lead, without loading it.
_LEAD, _CONSENT = Lead.__table__, Consent.__table__
_SHARING = (
    sa.select(
        _LEAD.c.status,
        _LEAD.c.anonymised_at,
        _CONSENT.c.withdrawn_at,
        _CONSENT.c.share_with_providers,
        _CONSENT.c.id,
    )
    .outerjoin(_CONSENT, _CONSENT.c.lead_id == _LEAD.c.id)
    .where(_LEAD.c.id == sa.bindparam("lead_id"))
)
# What tells which assignment a provider email of a lead is about (`assignment_named`): the lead's
# provider emails (all, or one), its quotes' assignments (all, or one), and that assignment's status.
_QUOTE = Quote.__table__
_OF_LEAD = sa.and_(
    _EMAIL.c.lead_id == sa.bindparam("lead_id"),
    _EMAIL.c.template.startswith(PROVIDER_TEMPLATE_PREFIX, autoescape=True),
)
_PROVIDER_EMAILS_OF_LEAD = sa.select(_EMAIL.c.id, _EMAIL.c.template, _EMAIL.c.idempotency_key).where(_OF_LEAD)
_PROVIDER_EMAIL_OF_LEAD = sa.select(_EMAIL.c.template, _EMAIL.c.idempotency_key).where(_OF_LEAD, _THIS_EMAIL)
_QUOTE_ASSIGNMENTS = sa.select(_QUOTE.c.id, _QUOTE.c.assignment_id).where(
    _QUOTE.c.lead_id == sa.bindparam("lead_id")
)
_QUOTE_ASSIGNMENT = _QUOTE_ASSIGNMENTS.where(_QUOTE.c.id == sa.bindparam("quote_id"))
_ASSIGNMENT_STATUS = sa.select(Assignment.__table__.c.status).where(
    Assignment.__table__.c.id == sa.bindparam("assignment_id")
)


def _claim_next(
    waiting: list[int], results: dict[int, str], words: "_WordsAhead", claim_until: float | None
) -> tuple[_Claimed, MimeMessage] | None:
    """Claim the first email of `waiting` still ours to send, in the caller's transaction, and
    return it as sent; the ones passed over get their status in `results`. None once `claim_until`
    (time.monotonic()) has passed, the rest left in `waiting`.

    The sharing rule is checked here, in the transaction right before the server is reached: a
    patient who withdrew while the previous email of the batch went out (the cancelling sweep
    skips claimed emails, never queued ones) is obeyed.
    """
    while waiting:
        if claim_until is not None and time.monotonic() >= claim_until:
            return None
        email_id = waiting.pop(0)
        email = _claim(email_id)
        if email is None:
            results[email_id] = "skipped"
            words.passed_over(email_id)
            continue
        message = _made_message(email, words.rendered)
        refusal = _provider_email_refusal(email)
        if refusal is not None:
            not_sent = Note("email_not_sent", why=refusal)
            _end_unsent(email, EmailStatus.CANCELLED, not_sent.english, not_sent)
            results[email_id] = EmailStatus.CANCELLED
            continue
        if isinstance(message, Exception):
            _fail_unmade(email, message)
            results[email_id] = EmailStatus.FAILED
            continue
        return email, message
    return None


def _claim(email_id: int) -> _Claimed | None:
    """Take the email for this worker; None if it is sent, failed, claimed or not yet due.

    A claim a dead worker left is taken back by `due_email_ids` only, which counts the re-send."""
    row = db.session.execute(_CLAIM, {"email_id": email_id, "now": utcnow()}).one_or_none()
    return None if row is None else _Claimed(*row)


def _made_message(email: _Claimed, rendered: _Rendered) -> MimeMessage | Exception:
    """The message to send for a claimed email, its words stored first when it was queued with
    `render_later`; or what keeps it from being made (`_fail_unmade`)."""
    try:
        if render_pending(email, rendered):
            db.session.execute(
                _STORE_WORDS,
                {
                    "email_id": email.id,
                    "words_subject": email.subject,
                    "words_text": email.body_text,
                    "words_html": email.body_html,
                },
            )
        return build_mime(email, current_app.config["MAIL_FROM"])
    except UNMADE as exc:
        return exc


def _fail_unmade(email: _Claimed, error: Exception) -> None:
    """Fail a claimed email that cannot be made: trying again cannot help, and it must not hold up
    the rest of its batch. Its lead's history says why, for the coordinators; the log says which
    email and what kind of error, without the words."""
    kind = type(error).__name__
    log.error("email %s (%s): not sent, it could not be made (%s)", email.id, email.template, kind)
    what = verbatim(f"{kind}: {error}")
    said = Note("email_not_made", error=what)
    _end_unsent(email, EmailStatus.FAILED, f"Not sent: it could not be made ({kind}: {error})", said)
    _note_failure(email.lead_id, Note("email_unmade", template=email.template, error=what))


def _end_unsent(email: _Claimed, status: EmailStatus, why: str, said: Note) -> None:
    """End a claimed email that never reached the server: cancelled (it may not be shared any
    more) or failed (it could not be made; no bounce of its address, `hard_bounced`); `why` in
    English, `said` for each reader."""
    db.session.execute(
        _END_UNSENT, {"email_id": email.id, "status": status.value, "why": why[:1000], "said": said.data}
    )


class _WordsAhead:
    """The words of a batch's emails queued with `render_later`, each rendered just before the
    claim that takes it, with no write lock held (SQLite's one lock, PostgreSQL's row locks).

    Only the email the next claim tries is rendered, so two tasks given the same batch do not each
    render all of it; once a claim finds the email rendered for it taken (another task works
    through the batch), this task renders the rest after claiming them. A rendering that fails is
    left to the claim, which renders it again and fails the email (`_fail_unmade`).
    """

    def __init__(self, email_ids: list[int]) -> None:
        with look_ups_first():
            # The emails that can be claimed as the batch begins, each with what renders it (or None).
            self._contexts: dict[int, dict | None] = dict(
                db.session.execute(_CLAIMABLE_CONTEXTS, {"email_ids": email_ids, "now": utcnow()}).all()
            )
        self.rendered: _Rendered = {}

    def render_next(self, waiting: list[int]) -> None:
        """Render the first email of `waiting` that could be claimed, if it waits for its words."""
        for email_id in waiting:
            if email_id in self._contexts:
                context = self._contexts.pop(email_id)
                # One that does not render is rendered again once claimed, which then fails the email.
                with contextlib.suppress(*UNMADE):
                    if context:
                        self.rendered[email_id] = (context, _render_context(context))
                return

    def passed_over(self, email_id: int) -> None:
        """A claim found the email not ours to send: if it was rendered ahead, another task works
        through this batch, and this one renders the rest only once it has claimed them."""
        if self.rendered.pop(email_id, None) is not None:
            self._contexts.clear()


def _record_and_claim_next(
    sent: _Claimed,
    error: Exception | None,
    waiting: list[int],
    results: dict[int, str],
    words: _WordsAhead,
    claim_until: float | None,
) -> tuple[_Claimed, MimeMessage] | None:
    """Record what the server said about the email `sent` and claim the next email, in one
    transaction. Tried again, with back-off, while no sweep can have taken the claim back
    (`_record_deadline`): if this commit is lost, the claim lapses and a delivered email goes out
    a second time."""
    deadline = _record_deadline(sent.claimed_at)
    for attempt in itertools.count():
        still_waiting, passed_over = list(waiting), {}
        try:
            # Read before the commit expires the row (reading it after would open a transaction).
            outcome = _record_outcome(sent, error)
            claimed = _claim_next(still_waiting, passed_over, words, claim_until)
            db.session.commit()
        except sa.exc.OperationalError:
            db.session.rollback()
            left = (deadline - utcnow()).total_seconds()
            if left <= 0:
                log.error("email %s: the outcome could not be recorded before its claim lapses", sent.id)
                raise
            log.warning("email %s: recording the outcome failed; trying again", sent.id)
            time.sleep(min(0.2 * 2**attempt, 2.0, left))
            continue
        if outcome is None:
            # The conversation outlasted the claim: the email is another sender's now, and its outcome too.
            log.warning(
                "email %s: its claim lapsed while the server was asked (%s); the outcome is left to "
                "the sender that holds the email now",
                sent.id,
                "accepted" if error is None else type(error).__name__,
            )
            results[sent.id] = "skipped"
        else:
            log.info("email %s: %s after %s attempt(s)", sent.id, *outcome)
            results[sent.id] = outcome[0]
        results.update(passed_over)
        waiting[:] = still_waiting
        return claimed
    raise AssertionError("unreachable")


def _record_deadline(claimed_at: datetime) -> datetime:
    """The last moment to begin recording the outcome of an email claimed at `claimed_at`: the
    claim lapses EMAIL_CLAIM_TIMEOUT_SECONDS after it, less its margin (`config.record_margin`: the
    last try may wait for the database, SQLite's lock up to SQLITE_BUSY_MS, and the sweeper's clock
    may run ahead of the sender's)."""
    timeout = current_app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"]
    return claimed_at + timedelta(seconds=timeout - record_margin(timeout))


def _conversation(email: _Claimed) -> Conversation:
    """The conversation that hands a claimed email to the server: over by the last moment to begin
    recording its outcome (`_record_deadline`), so the claim always outlives it, whatever the server
    does; its DATA goes only after `_mark_data_sent`."""
    left = (_record_deadline(email.claimed_at) - utcnow()).total_seconds()
    return Conversation(ends_by=time.monotonic() + left, before_data=lambda: _mark_data_sent(email))


def _mark_data_sent(email: _Claimed) -> None:
    """Commit, right before DATA, that this attempt hands the message over (`data_sent_at`): if its
    sender dies before recording the server's answer, the attempt that delivers the email later
    knows that an earlier copy may have arrived. Refuses (NotOffered: the message does not go) once
    the claim no longer holds, since the email is then another sender's, or when the database
    cannot write the mark."""
    try:
        marked = db.session.execute(
            _MARK_DATA_SENT, {"email_id": email.id, "claim": email.claimed_at, "now": utcnow()}
        ).rowcount
        db.session.commit()
    except sa.exc.OperationalError as exc:
        db.session.rollback()
        raise NotOffered(f"the database could not note that it goes ({type(exc).__name__})") from exc
    if not marked:
        raise NotOffered("its claim lapsed before the message went")


# What an email whose words an erasure removed while it went out says instead of the server's answer:
# its English text on the email row, the note itself (worded in the reader's language) beside it
# and in the history.
ERASED_WHILE_SENT_NOTE = Note("email_erased_while_sent")
ERASED_WHILE_SENT = SAID["email_erased_while_sent"]


def _record_outcome(sent: _Claimed, error: Exception | None) -> tuple[str, int] | None:
    """The server's answer on the email row, in the caller's transaction; its status and attempts,
    or None when the claim that sent it no longer holds (nothing is written then)."""
    claim = {"email_id": sent.id, "claim": sent.claimed_at}
    if error is None:
        # The common case in one statement, without loading the row and its bodies.
        attempts = db.session.execute(_RECORD_SENT, {**claim, "now": utcnow()}).scalar_one_or_none()
        if attempts is None:
            return None
        if sent.data_sent_at is not None:
            _note_may_have_arrived_twice(sent)
        return EmailStatus.SENT, attempts
    if db.session.execute(_RELEASE_CLAIM, claim).first() is None:
        return None
    email = db.session.get(EmailMessage, sent.id)
    if not (isinstance(error, TransientSmtpError) and error.may_have_arrived):
        # The server answered, or the message never went: nothing of this attempt is in doubt.
        email.data_sent_at = sent.data_sent_at
    if not email.body_text:
        # The patient's data was erased while the server was asked (a claimed email always holds
        # its words): the answer often quotes their address, and nothing is left to send again.
        _mark_failed(email, ERASED_WHILE_SENT, ERASED_WHILE_SENT_NOTE)
        return email.status, email.attempts
    said = error.said if isinstance(error, SmtpFailure) else _answered("mail_answered", str(error))
    if isinstance(error, PermanentSmtpError):
        _mark_failed(email, str(error), said)
    else:
        _schedule_retry(email, str(error), said)
    return email.status, email.attempts


# An email delivered after an earlier attempt handed it to the server (DATA) and never heard its
# answer (its worker died, the connection dropped): a lead event of this kind says it may have
# arrived twice, and the stats page counts them.
MAY_HAVE_ARRIVED_TWICE = "email_may_have_arrived_twice"


def _note_may_have_arrived_twice(sent: _Claimed) -> None:
    if sent.lead_id is not None:
        db.session.get(Lead, sent.lead_id).add_event(
            MAY_HAVE_ARRIVED_TWICE,
            actor_type="system",
            note=Note("email_may_have_arrived_twice", template=sent.template),
        )


def _provider_email_refusal(email: _Claimed) -> Note | None:
    """Why this provider email must not go out any more: the lead may no longer be shared, or the
    request ended for the clinic it is about (the patient chose another, the clinic declined...)."""
    if email.lead_id is None or not email.template.startswith(PROVIDER_TEMPLATE_PREFIX):
        return None
    status, anonymised_at, withdrawn_at, share, consent_id = db.session.execute(
        _SHARING, {"lead_id": email.lead_id}
    ).one()
    consent = None if consent_id is None else _SharedConsent(withdrawn_at, share)
    refusal = sharing_refusal(_SharedLead(status, anonymised_at, consent))
    if refusal:
        return fixed(refusal)
    assignment_id = _assignment_of_claimed(email)
    if assignment_id is None:
        return None
    ended = db.session.execute(_ASSIGNMENT_STATUS, {"assignment_id": assignment_id}).scalar_one_or_none()
    if ended is None or ended in ENGAGED:
        return None
    return Note("no_longer_offered", status=Note("assignment_status", status=ended))


def _assignment_of_claimed(email: _Claimed) -> int | None:
    """The assignment a claimed provider email is about (`assignment_named`), looked up a row at a
    time: most keys name their assignment and cost no query, a quote's one, a resend's one a step."""
    lead = {"lead_id": email.lead_id}

    def provider_email(email_id: int) -> tuple[str, str] | None:
        row = db.session.execute(_PROVIDER_EMAIL_OF_LEAD, {**lead, "email_id": email_id}).one_or_none()
        return None if row is None else tuple(row)

    def quote_assignment(quote_id: int) -> int | None:
        row = db.session.execute(_QUOTE_ASSIGNMENT, {**lead, "quote_id": quote_id}).one_or_none()
        return None if row is None else row.assignment_id

    return assignment_named(email.template, email.idempotency_key, provider_email, quote_assignment)


class _SharedConsent(NamedTuple):
    withdrawn_at: object
    share_with_providers: bool


class _SharedLead(NamedTuple):
    """What `sharing_refusal` reads of a lead and its consent."""

    status: str
    anonymised_at: object
    consent: _SharedConsent | None


def cancel_provider_emails(lead_id: int, reason: Note, assignment_ids: Collection[int] | None = None) -> int:
    """Cancel the lead's provider emails not yet sent, or only those about `assignment_ids`
    (`provider_email_assignments`), saying why ("Not sent: `reason`"); how many were cancelled."""
    not_sent = Note("email_not_sent", why=reason)
    which = EmailMessage.lead_id == lead_id
    if assignment_ids is not None:
        ended = set(assignment_ids)
        about = provider_email_assignments(lead_id)
        which = EmailMessage.id.in_(sorted(email_id for email_id, named in about.items() if named in ended))
    return db.session.execute(
        sa.update(EmailMessage)
        .where(
            which,
            EmailMessage.status == EmailStatus.QUEUED,
            EmailMessage.template.startswith(PROVIDER_TEMPLATE_PREFIX, autoescape=True),
        )
        .values(
            status=EmailStatus.CANCELLED.value, last_error=not_sent.english, last_error_data=not_sent.data
        )
    ).rowcount


def provider_email_assignments(lead_id: int) -> dict[int, int | None]:
    """The assignment each provider email of the lead is about, by email id: the one its key names,
    or its quote's; for a resend (of a resend...), its original's. None when that chain leaves the
    lead's provider emails or loops."""
    emails = {
        email_id: (template, key)
        for email_id, template, key in db.session.execute(_PROVIDER_EMAILS_OF_LEAD, {"lead_id": lead_id})
    }
    quotes = dict(db.session.execute(_QUOTE_ASSIGNMENTS, {"lead_id": lead_id}).all())
    return {email_id: assignment_named(*emails[email_id], emails.get, quotes.get) for email_id in emails}


def assignment_named(
    template: str,
    key: str,
    provider_email: Callable[[int], tuple[str, str] | None],
    quote_assignment: Callable[[int], int | None],
) -> int | None:
    """The assignment a provider email (its template and key) is about; `provider_email` gives the
    template and key of another provider email of the lead (a resend's original), `quote_assignment`
    the assignment of a quote of the lead. None when the chain leaves them or loops."""
    seen = set()
    while (parent := resend_key_parent(key)) is not None:
        original = None if parent in seen else provider_email(parent)
        if original is None:
            return None
        seen.add(parent)
        template, key = original
    about = assignment_or_quote(template, key)
    if about is None:
        return None
    what, named = about
    return named if what == "assignment" else quote_assignment(named)


def _schedule_retry(email: EmailMessage, error: str, said: Note) -> None:
    config = current_app.config
    delay = backoff(email.attempts, config["EMAIL_RETRY_BASE_SECONDS"])
    horizon = email.created_at + timedelta(seconds=config["EMAIL_RETRY_HORIZON_SECONDS"])
    if utcnow() + delay > horizon:
        gave_up = Note("mail_gave_up", attempts=email.attempts, last=said)
        # Stored English (the note words it in each reader's language): "1 attempt", "2 attempts".
        attempts = f"{email.attempts} attempt{'' if email.attempts == 1 else 's'}"
        _mark_failed(email, f"gave up after {attempts}: {error}", gave_up)
        return
    email.status = EmailStatus.QUEUED
    email.next_attempt_at = utcnow() + delay
    email.last_error, email.last_error_data = error[:1000], said.data


def hard_bounced(email: EmailMessage) -> bool:
    """The mail server refused this email for good (a 5xx answer), as opposed to giving up retrying."""
    return email.status == EmailStatus.FAILED and (email.last_error or "")[:1] == "5"


# `hard_bounced` in SQL, for the sweep that finds the bounces no send task handled.
HARD_BOUNCED = sa.and_(EmailMessage.status == EmailStatus.FAILED, EmailMessage.last_error.startswith("5"))


def _mark_failed(email: EmailMessage, error: str, said: Note) -> None:
    """`error` (English, or the server's answer as given) and `said` (the same for each reader)
    on the email row; `said` in its lead's history too."""
    email.status = EmailStatus.FAILED
    email.last_error, email.last_error_data = error[:1000], said.data
    _note_failure(email.lead_id, Note("email_failed", template=email.template, error=said))


def _note_failure(lead_id: int | None, note: Note) -> None:
    """An email's failure in its lead's history, where the coordinators see it."""
    if lead_id is not None:
        db.session.get(Lead, lead_id).add_event("email_failed", actor_type="system", note=note)


def due_email_ids(limit: int = 500) -> list[int]:
    """Emails whose next attempt is due, reclaiming those a dead worker left claimed."""
    return [email_id for email_id, _ in _due_emails(limit)]


def _due_emails(limit: int) -> list[tuple[int, str]]:
    now = utcnow()
    _take_back_abandoned_claims(now)
    rows = db.session.execute(
        sa.select(EmailMessage.id, EmailMessage.template)
        .where(EmailMessage.status == EmailStatus.QUEUED, EmailMessage.next_attempt_at <= now)
        .order_by(EmailMessage.next_attempt_at)
        .limit(limit)
    ).all()
    db.session.commit()  # no transaction stays open while the tasks are published
    return [tuple(row) for row in rows]


def publish_send(task_name: str, email_ids: list[int]) -> None:
    """Hand queued emails to the senders now: one `task_name` task for them (raises when the
    broker refuses)."""
    current_app.extensions["celery"].send_task(task_name, kwargs={"email_ids": email_ids})


def hand_over(email_ids: list[int]) -> None:
    """Hand emails (none of them a provider's) that a task carried to the senders: the intake's
    confirmation, carried by its routing task. A broker that refuses leaves them to the due-email
    sweep, after the safety net, as for any email whose send task was lost."""
    try:
        publish_send(outbox.SEND_EMAILS, email_ids)
    except Exception as exc:  # any broker failure
        log.warning("emails %s left to the due-email sweep (%s)", email_ids, type(exc).__name__)


# Due emails go out in tasks of this many: one connection each, while a busy sweep still spreads
# them over every pool process.
DUE_BATCH_SIZE = 10


def due_email_batches(limit: int = 500) -> list[tuple[str, list[int]]]:
    """The due emails (`due_email_ids`) as send tasks to publish: (task name, email ids)."""
    return _as_send_tasks(_due_emails(limit))


def _as_send_tasks(emails) -> list[tuple[str, list[int]]]:
    """Emails, (id, template) each, as send tasks to publish: (task name, email ids)."""
    by_task: dict[str, list[int]] = {}
    for email_id, template in emails:
        by_task.setdefault(send_task_for(template), []).append(email_id)
    return [
        (task_name, ids[start : start + DUE_BATCH_SIZE])
        for task_name, ids in by_task.items()
        for start in range(0, len(ids), DUE_BATCH_SIZE)
    ]


def _take_back_abandoned_claims(now) -> None:
    """Queue again the emails whose claim is older than the timeout (their worker died while
    sending). The server may already have accepted one whose sender sent DATA (`data_sent_at`):
    when it goes out again, possibly a duplicate with the same Message-ID, the lead's history says
    so (`MAY_HAVE_ARRIVED_TWICE`); one whose sender died before DATA, or that is never sent again
    (cancelled at its next claim), goes once. A sender still talking when its claim lapses (a clock
    running behind the sweeper's: its own conversation ends before the lapse) sends no DATA
    (`_mark_data_sent`) and records nothing (`_OUR_CLAIM`).

    One whose words an erasure removed meanwhile (a claimed email always holds its words) is
    failed instead, as `_record_outcome` fails it: a blank copy must not go out."""
    stale = now - timedelta(seconds=current_app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"])
    abandoned = sa.and_(EmailMessage.status == EmailStatus.SENDING, EmailMessage.claimed_at <= stale)
    erased = db.session.execute(
        sa.update(EmailMessage)
        .where(abandoned, EmailMessage.body_text == "")
        .values(
            status=EmailStatus.FAILED,
            claimed_at=None,
            last_error=ERASED_WHILE_SENT,
            last_error_data=ERASED_WHILE_SENT_NOTE.data,
        )
        .returning(EmailMessage.lead_id, EmailMessage.template)
    ).all()
    for lead_id, template in erased:
        _note_failure(lead_id, Note("email_failed", template=template, error=ERASED_WHILE_SENT_NOTE))
    db.session.execute(
        sa.update(EmailMessage)
        .where(abandoned)
        .values(status=EmailStatus.QUEUED, claimed_at=None, next_attempt_at=now)
    )
    db.session.commit()
