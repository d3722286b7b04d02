"""A patient with limited hand function can hit every link that stands alone on their pages: on a
360 px phone, in English, Danish and Arabic, the brand, the language menu's links (buttons of the
form on the form's page) and each link on a line of its own are targets at least 24 × 24 CSS px
(WCAG 2.2 2.5.8), while a link inside a sentence keeps the height of its line."""

import pytest

from leads.extensions import db
from leads.messaging import tokens
from leads.quotes import service as quotes
from leads.routing import responses
from tests.e2e.test_results_announced import routed_lead
from tests.quote_support import offer

pytestmark = pytest.mark.e2e

MINIMUM = 24  # CSS px, WCAG 2.2 2.5.8


@pytest.fixture
def quoted(app, taxonomy, live_server):
    """A lead one clinic has quoted: the patient's page and the quote's confirmation step."""
    lead, assignments = routed_lead()
    responses.accept(assignments[0].id, note=None)
    quote = quotes.send_quote(assignments[0].id, offer())
    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead.id)}"
    db.session.commit()
    return patient_url, f"{patient_url}/quotes/{quote.id}/choose"


def _boxes(page, selector: str, alone: bool = False) -> list[dict]:
    """Each link's box; `alone`: only the links that are the whole text of their paragraph."""
    return page.eval_on_selector_all(
        selector,
        """(links, alone) => links
            .filter(link => !alone || link.parentElement.textContent.trim() === link.textContent.trim())
            .map(link => {
                const box = link.getBoundingClientRect();
                // An inline link broken over two lines has a box per line; the bounding one spans both.
                const lines = Array.from(link.getClientRects(), line => line.height);
                return {text: link.textContent.trim(), width: box.width, height: box.height, lines};
            })""",
        alone,
    )


def _too_small(boxes: list[dict]) -> list[dict]:
    return [box for box in boxes if box["width"] < MINIMUM or box["height"] < MINIMUM]


@pytest.mark.parametrize("language", ["en", "da", "ar"])
def test_the_links_that_stand_alone_on_the_patients_pages_are_big_enough_to_hit_on_a_phone(
    live_server, phone_page, quoted, language
):
    patient_url, choose_url = quoted
    phone_page.goto(f"{live_server.url}/quote?language={language}")
    # A link inside a sentence is left as it is (WCAG's exception for text): the lines keep their spacing.
    in_sentence = _boxes(phone_page, "form.quote-form p a[href='/privacy']")[0]["lines"]
    assert in_sentence and max(in_sentence) < MINIMUM
    pages = {
        "/quote": None,
        "/quote/thanks": "Ask for a free quote",  # no request sent in this visit
        "/no-such-page": "Go to the quote form",
        patient_url: "Go ahead with this clinic",  # a button-styled link
        choose_url: "No, go back to my quotes",
    }
    for url, standalone in pages.items():
        phone_page.goto(url if url.startswith("http") else live_server.url + url)
        assert phone_page.get_attribute("html", "lang") == language
        menu = _boxes(phone_page, ".language-menu a, .language-menu li button")
        assert len(menu) == 6 and _too_small(menu) == [], url
        brand = _boxes(phone_page, ".brand")
        assert len(brand) == 1 and _too_small(brand) == [], url
        alone = _boxes(phone_page, "main p > a", alone=True)
        assert _too_small(alone) == [], url
        if standalone and language == "en":
            assert standalone in [box["text"] for box in alone]
