"""Ids read from links: the largest one an id column holds, and the URL converter that stops there."""

import re

from werkzeug.routing import IntegerConverter

# Every id column is sa.Integer, PostgreSQL's 32-bit integer: a larger number names no row, and
# PostgreSQL refuses to compare a column with it (a DataError; SQLite's own limit is 2**63 - 1).
MAX_ID = 2**31 - 1


def numbers_up_to(most: int) -> str:
    """A regular expression for the ASCII decimal numbers from 0 to `most`, no longer than it."""
    digits = str(most)
    shorter = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    # As long as `most`: the same leading digits, then a smaller one, then any.
    lower = [
        f"{digits[:i]}[0-{int(digit) - 1}][0-9]{{{len(digits) - i - 1}}}"
        for i, digit in enumerate(digits)
        if digit != "0"
    ]
    return "(?:" + "|".join([*shorter, *lower, digits]) + ")"


_ID = re.compile(numbers_up_to(MAX_ID))


def id_from(text: str | None) -> int | None:
    """The id `text` names, or None when it cannot be one (not ASCII digits, or past MAX_ID)."""
    return int(text) if text is not None and _ID.fullmatch(text) else None


class IdConverter(IntegerConverter):
    """`<int:…>` in a route: a number no larger than MAX_ID, else the path matches no route (a 404)
    instead of reaching the database (a 500). In the pattern rather than a `max`: a number refused
    after the match answers a POST with 405 where a GET route shares the path."""

    regex = numbers_up_to(MAX_ID)
