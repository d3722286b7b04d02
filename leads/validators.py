"""Checks on typed text shared by the forms and pages of more than one area."""

import re

from wtforms.validators import ValidationError

# Unicode's control characters (category Cc: C0, DEL and C1): nobody types them, they break
# terminals, and PostgreSQL refuses NUL in text. The second leaves tab, LF and CR alone.
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Every id column is an INTEGER, 32 bits on PostgreSQL: a larger id in a link names no row, and
# PostgreSQL refuses to compare the column with it.
MAX_ROW_ID = 2**31 - 1
_ROW_ID = re.compile(r"[0-9]{1,10}")


def row_id(text: str | None) -> int | None:
    """The row id `text` spells in ASCII digits, or None when it spells anything else or an id
    beyond MAX_ROW_ID."""
    if not _ROW_ID.fullmatch(text or ""):
        return None
    number = int(text)
    return number if number <= MAX_ROW_ID else None


def has_control_characters(text: str | None, *, multiline: bool = False) -> bool:
    """Whether `text` holds a control character (tab and line breaks allowed when `multiline`)."""
    return bool((CONTROLS_BUT_LINES if multiline else CONTROLS).search(text or ""))


class NoControlCharacters:
    """A form validator refusing control characters with `message`; `multiline` for a text area."""

    def __init__(self, message: str, *, multiline: bool = False) -> None:
        self.message = message
        self.multiline = multiline

    def __call__(self, form, field) -> None:
        if has_control_characters(field.data, multiline=self.multiline):
            raise ValidationError(self.message)
