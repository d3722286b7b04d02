"""The queue's keyset cursor on its own: it round-trips and refuses anything else."""

from datetime import UTC, datetime

import pytest

from leads.staff.queue import Cursor
from leads.timeutil import utcnow


def test_a_cursor_survives_encoding_and_rejects_garbage():
    cursor = Cursor(2, utcnow().replace(microsecond=123456), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for garbage in ("", "x", "9.1.1", "1.abc.2", "1.2", "1.2.3.4", "'; drop table lead; --"):
        assert Cursor.decode(garbage) is None


@pytest.mark.parametrize(
    "text",
    [
        "0.9999999999999999999.1",  # after the year 9999
        "0.-9999999999999999999.1",  # before the year 1
        "0.99999999999999999.1",  # 17 digits: the year 5138
        "3.0.9999999999999999999",  # beyond a 64-bit integer (SQLite's and PostgreSQL's)
        "3.0.2147483648",  # beyond an INTEGER id column: PostgreSQL refuses it, no lead has it
        "3.0.²",  # a digit to str.isdigit, not to a link
    ],
)
def test_a_cursor_out_of_range_is_refused_like_a_malformed_one(text):
    assert Cursor.decode(text) is None


def test_cursors_at_the_edges_of_the_range_still_decode():
    for moment in (datetime(1654, 1, 1, tzinfo=UTC), datetime(2286, 1, 1, tzinfo=UTC)):
        cursor = Cursor(3, moment, 2_147_483_647)
        assert Cursor.decode(cursor.encode()) == cursor
