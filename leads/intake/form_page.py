"""The empty quote form's page, rendered once per process for each language, link and taxonomy,
with each visitor's own values put into it.

Rendering the form (a 35 KB page: every country and language named in the reader's language,
escaped) is most of what a GET of the form costs. What differs between two visitors who arrive in
the same language by the same link is three hidden values: the CSRF token, the signed form token
(the time trap) and where they came from. The page is rendered once with a placeholder in each,
and every visitor gets a copy with their own values, escaped as the template would.

A page with flashed messages, or with answers and errors (a POST), is always rendered afresh.
"""

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from markupsafe import escape

# Placeholders no escaping changes and no text of the page contains.
HOLES = {
    "csrf_token": "QFORMHOLEcsrf7e1d",
    "form_token": "QFORMHOLEtoken5b9c",
    "referrer": "QFORMHOLEreferrer3a2f",
}


class FormPages:
    """A bounded cache of rendered pages (least recently used goes first), one per process."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._pages: OrderedDict[tuple, str] = OrderedDict()
        self._lock = Lock()

    def page(self, key: tuple, render: Callable[[], str], values: dict[str, str]) -> str:
        """The page for `key` (rendered by `render()` with HOLES in it the first time), with
        `values` (one per hole, unescaped) put in."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
        if page is None:
            page = render()
            missing = [name for name, hole in HOLES.items() if name in values and hole not in page]
            if missing:
                raise RuntimeError(f"the form page has no place for {', '.join(missing)}")
            with self._lock:
                self._pages[key] = page
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        for name, hole in HOLES.items():
            page = page.replace(hole, str(escape(values.get(name, ""))))
        return page

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)
