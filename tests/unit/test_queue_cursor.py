"""The queue's keyset cursor on its own: it round-trips and refuses anything else."""

from leads.staff.queue import Cursor
from leads.timeutil import utcnow


def test_a_cursor_survives_encoding_and_rejects_garbage():
    cursor = Cursor(2, utcnow().replace(microsecond=123456), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for garbage in ("", "x", "9.1.1", "1.abc.2", "1.2", "1.2.3.4", "'; drop table lead; --"):
        assert Cursor.decode(garbage) is None
