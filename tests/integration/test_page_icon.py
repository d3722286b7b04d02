"""Every page names its (empty) icon, so browsers do not ask for /favicon.ico, which the app does
not serve: a 404 in the console of every patient, clinic and coordinator page."""

import pytest


@pytest.mark.parametrize("path", ["/quote", "/privacy", "/staff/login", "/p/not-a-token", "/no-such-page"])
def test_a_page_names_its_icon_so_the_browser_asks_for_no_favicon(client, taxonomy, path):
    page = client.get(path).get_data(as_text=True)
    assert '<link rel="icon" href="data:,">' in page
