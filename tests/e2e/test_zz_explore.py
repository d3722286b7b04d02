import json
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.messaging import tokens
from leads.models import Assignment, Consent, Provider
from leads.routing.service import route_lead
from tests.e2e.conftest import axe_violations
from tests.factories import LeadFactory
from leads.dev import seed

PROBE = """() => {
 const out = {sw: document.documentElement.scrollWidth, lang: document.documentElement.lang,
   heads: [...document.querySelectorAll('h1,h2,h3,h4')].map(h => h.tagName + ' ' + h.textContent.trim().slice(0,50)),
   small: [...document.querySelectorAll('a,button,input,select,textarea,summary')].filter(e => {const r=e.getBoundingClientRect(); return r.width>0 && (r.width<24||r.height<24);}).map(e=>e.outerHTML.slice(0,90)+' '+Math.round(e.getBoundingClientRect().width)+'x'+Math.round(e.getBoundingClientRect().height)),
   wide: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 361).map(e=>e.tagName+'.'+e.className+' '+Math.round(e.getBoundingClientRect().right)).slice(0,10)};
 return out;}"""

@pytest.mark.parametrize("language", ["da", "en"])
def test_explore(live_server, phone_page, app, taxonomy, language):
    seed.load_demo_providers()
    lead = LeadFactory(full_name="Freja Ørsted", details="C6 " * 10)
    db.session.add(Consent(lead=lead, text_version="test-v1", share_with_providers=True, contact=True, source_form="quote"))
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    a = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)).first()
    a.provider.notification_language = language
    db.session.commit()
    aid = a.id
    db.session.rollback()
    page = phone_page
    url = f"{live_server.url}/p/{tokens.make_assignment_token(aid)}"
    page.goto(url)
    print("OPEN", json.dumps(page.evaluate(PROBE), ensure_ascii=False, indent=1))
    print("AXE", axe_violations(page))
    # keyboard: tab through
    seq = []
    for _ in range(25):
        page.keyboard.press("Tab")
        seq.append(page.evaluate("() => document.activeElement.outerHTML.slice(0,80)"))
    print("TABS", "\n".join(seq))
    page.locator("form[action$='/accept'] button").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    print("ACCEPTED", json.dumps(page.evaluate(PROBE), ensure_ascii=False, indent=1))
    print("FOCUS", page.evaluate("() => document.activeElement.outerHTML.slice(0,200)"))
    # bad quote
    page.locator("#price_from").fill("50000")
    page.locator("#price_to").fill("20000")
    page.locator("#earliest_start").fill("2020-01-01")
    page.locator("#valid_days").fill("0")
    page.locator("#message").fill("x" * 5000)
    page.locator("#includes-0").uncheck()
    page.locator("form[action$='/quote'] button").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    print("ERR", json.dumps(page.evaluate(PROBE), ensure_ascii=False, indent=1))
    print("FOCUS", page.evaluate("() => document.activeElement.outerHTML.slice(0,200)"))
    print("SUMMARY", page.locator(".error-summary, [role=alert]").first.inner_text())
    for f in ["price_from", "price_to", "earliest_start", "valid_days", "message", "includes-0"]:
        print(f, page.locator("#" + f).evaluate("e => [e.value.slice(0,20), e.getAttribute('aria-invalid'), e.getAttribute('aria-describedby'), e.checked]"))
    print("AXE", axe_violations(page))
    page.screenshot(path=f"/tmp/prof/err-{language}.png", full_page=True)
