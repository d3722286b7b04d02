"""The development mailbox: the .eml files the local SMTP sink keeps, listed and parsed.

Only names the sink could have written are accepted, and the resolved path must sit directly
in the mail directory, so no request can read another file.
"""

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.eml")
LIST_LIMIT = 200


@dataclass
class MessageSummary:
    name: str
    date: str
    sender: str
    to: str
    subject: str


@dataclass
class Message:
    summary: MessageSummary
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None


def _summary(name: str, message) -> MessageSummary:
    return MessageSummary(
        name=name,
        date=str(message.get("Date", "")),
        sender=str(message.get("From", "")),
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "(no subject)")),
    )


def list_messages(directory: str | Path, limit: int = LIST_LIMIT) -> tuple[list[MessageSummary], int]:
    """The newest `limit` messages (newest first) and how many there are in all."""
    folder = Path(directory)
    if not folder.is_dir():
        return [], 0
    paths = sorted((p for p in folder.glob("*.eml") if SAFE_NAME.fullmatch(p.name)), reverse=True)
    parser = BytesHeaderParser(policy=policy.default)
    summaries = []
    for path in paths[:limit]:
        with path.open("rb") as handle:
            summaries.append(_summary(path.name, parser.parse(handle)))
    return summaries, len(paths)


def resolve(directory: str | Path, name: str) -> Path | None:
    """The message file called `name`, or None if the name is unsafe or nothing is there."""
    if not SAFE_NAME.fullmatch(name):
        return None
    folder = Path(directory).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def read_message(directory: str | Path, name: str) -> Message | None:
    path = resolve(directory, name)
    if path is None:
        return None
    with path.open("rb") as handle:
        message: EmailMessage = BytesParser(policy=policy.default).parse(handle)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return Message(
        summary=_summary(name, message),
        headers=[(key, str(value)) for key, value in message.items()],
        text=text.get_content() if text is not None else None,
        html=html.get_content() if html is not None else None,
    )
