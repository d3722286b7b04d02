"""Property: whatever a browser, a bot or a fuzzer sends to /quote, it never gets a 500."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.extensions import db
from tests.quote_support import VALID_ANSWERS, aged_token, client_with_own_address

FIELDS = (*VALID_ANSWERS, "form_token", "message_subject", "utm_source", "utm_campaign", "referrer")

# Text that stresses parsers: any Unicode a browser can send, control characters, HTML,
# values far over every limit.
hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=100, max_size=6000),
    st.sampled_from(["", " ", "\x00", "\r\n", "<script>alert(1)</script>", "' OR 1=1 --", "%00", "../../"]),
)


@st.composite
def form_data(draw, token: str) -> dict:
    """The valid answers with a few fields broken, dropped or repeated, plus stray fields."""
    data = {**VALID_ANSWERS, "form_token": token}
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=5)):
        how = draw(st.sampled_from(["hostile", "missing", "repeated"]))
        if how == "hostile":
            data[name] = draw(hostile_text)
        elif how == "missing":
            data.pop(name, None)
        else:
            data[name] = [draw(hostile_text), data.get(name, "")]
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=20), hostile_text, max_size=3))
    return {**extra, **data}


def test_the_quote_endpoint_never_answers_500(app, taxonomy):
    seen = Counter()
    token = aged_token(app, age=60)

    @settings(max_examples=150, deadline=None, database=None)
    @given(payload=form_data(token))
    def post_anything(payload):
        response = client_with_own_address(app).post("/quote", data=payload)
        seen[response.status_code] += 1
        assert response.status_code in (303, 400, 409, 413, 422), response.status_code
        assert b"Traceback" not in response.data
        db.session.rollback()

    post_anything()
    # The property covered both roads: requests stored and requests refused.
    assert seen[303] and seen[422], seen


def test_any_prefill_link_shows_the_form(app, taxonomy):
    @settings(max_examples=60, deadline=None, database=None)
    @given(
        query=st.dictionaries(st.sampled_from(["treatment", "condition", "utm_source", "x"]), hostile_text)
    )
    def open_link(query):
        response = client_with_own_address(app).get("/quote", query_string=query)
        assert response.status_code == 200

    open_link()
