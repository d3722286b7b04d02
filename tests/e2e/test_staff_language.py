"""A coordinator chooses Dansk under My settings in a real browser: from then on the queue, the lead
page and the settings speak Danish, say so in `<html lang>`, show no English words of their own
and pass axe; the choice survives signing out and in again."""

import re

from leads.extensions import db
from leads.models import Role, User
from tests.e2e.conftest import axe_violations, sign_in_staff
from tests.factories import LeadFactory
from tests.staff_support import make_staff

SENTINELS = re.compile(
    r"\b(the|your|you|and|with|please|choose|request|queue|settings|save|sign|assigned|provider|"
    r"timeline|received|nobody|change|search|filters)\b",
    re.IGNORECASE,
)


def _english_left(page) -> list[str]:
    # The patient's own words, stored notes and the consent wording shown to the patient are data.
    text = page.evaluate(
        """() => {
            const body = document.body.cloneNode(true);
            body.querySelectorAll('script, blockquote, .note, .details-text, .breakdown')
                .forEach(el => el.remove());
            return body.innerText.replaceAll('Danish Treatment Quotes', '');
        }"""
    )
    return sorted({match.lower() for match in SENTINELS.findall(text)})


def test_a_coordinator_switches_the_staff_pages_to_danish(staff_server, page, taxonomy):
    make_staff(Role.COORDINATOR, email="coordinator@example.dk")
    lead = LeadFactory(full_name="Petra Jensen", status="routed")
    db.session.commit()
    lead_id = lead.id
    db.session.rollback()  # hold no SQLite lock while the live server works

    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.get_by_role("link", name="My settings").click()
    page.get_by_label("Language of the staff pages").select_option("da")
    page.get_by_role("button", name="Save my settings").click()
    assert "Dine indstillinger er gemt" in page.get_by_role("status").inner_text()

    for path in ("/staff/account/settings", "/staff/leads", f"/staff/leads/{lead_id}"):
        page.goto(staff_server.url + path)
        assert page.get_attribute("html", "lang") == "da", path
        assert _english_left(page) == [], f"English words on {path}"
        assert axe_violations(page) == [], path
    assert page.get_by_role("heading", level=1).inner_text().startswith("Forespørgsel ")

    page.get_by_role("button", name=re.compile(r"^Log ud")).click()
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    assert page.get_attribute("html", "lang") == "da"
    assert page.get_by_role("heading", name="Kø af forespørgsler").is_visible()
    assert db.session.scalar(db.select(User.language).filter_by(email="coordinator@example.dk")) == "da"
    db.session.rollback()
