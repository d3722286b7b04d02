"""Ids in links: the pattern every `<int:…>` route uses stops exactly at the largest id."""

import random
import re

import pytest

from leads.ids import MAX_ID, id_from, numbers_up_to


@pytest.mark.parametrize("most", [0, 7, 10, 99, 100, 305, 1000, 2**31 - 1, 2**63 - 1])
def test_the_pattern_takes_every_number_up_to_the_bound_and_none_above(most):
    pattern = re.compile(numbers_up_to(most))
    rng = random.Random(most)
    below = {0, most, most // 2, *(rng.randint(0, most) for _ in range(500))}
    above = {most + 1, most + 10, most * 10 + 1, *(rng.randint(most + 1, most * 3 + 20) for _ in range(500))}
    assert all(pattern.fullmatch(str(n)) for n in below)
    assert not any(pattern.fullmatch(str(n)) for n in above)


def test_an_id_from_a_link_is_ascii_digits_no_larger_than_an_id_column_holds():
    assert MAX_ID == 2**31 - 1  # sa.Integer: PostgreSQL's integer
    assert id_from("42") == 42 and id_from(str(MAX_ID)) == MAX_ID and id_from("0042") == 42
    for text in (None, "", "-1", "4 2", "x", str(MAX_ID + 1), "9" * 30, "٤٢", "²", "42\n"):
        assert id_from(text) is None, text
