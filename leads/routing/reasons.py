"""A lead's status reason in words. Why a routing found no provider: the engine counts its
hard-filter reasons as codes (`MatchResult.ruled_out`), and the status reason keeps them so,
without words; a page words them in its reader's language (`describe`), and the lead's history
note, like every note, in English (`in_english`). The engine itself stays free of Flask. A fixed
reason is stored as its English text, marked for the catalogs (N_), and translated when shown."""

import json

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from leads.routing import engine

# What each hard filter says of the providers it ruled out.
RULED_OUT = {
    engine.INACTIVE: _l("deactivated"),
    engine.PAUSED_UNTIL: _l("paused for now"),
    engine.ALREADY_TRIED: _l("already had this patient"),
    engine.TREATMENT_NOT_OFFERED: _l("do not offer the treatment"),
    engine.CONDITION_NOT_ACCEPTED: _l("do not accept the condition"),
    engine.CAPACITY_USED: _l("weekly capacity used up"),
    engine.NO_ADDRESS: _l("no notification address"),
}
NO_PROVIDER = "no_provider"


def no_provider(result: engine.MatchResult) -> str:
    """The status reason of a routing that found nobody, as stored: the reasons counted, no words
    (a few dozen characters: one entry per hard filter)."""
    ruled_out = [[code, count] for code, count in result.ruled_out()]
    return json.dumps({"what": NO_PROVIDER, "ruled_out": ruled_out}, separators=(",", ":"))


def describe(stored: str) -> str:
    """A lead's status reason in the reader's language: a routing's counted reasons as a sentence,
    a reason the catalogs hold (`sharing_refusal`'s) translated, any other text as it is."""
    try:
        coded = json.loads(stored) if stored.startswith("{") else None
    except ValueError:
        coded = None
    if not isinstance(coded, dict) or coded.get("what") != NO_PROVIDER:
        return gettext(stored)
    counts = [
        gettext("%(reason)s (%(count)d)", reason=RULED_OUT.get(code, code), count=count)
        for code, count in coded.get("ruled_out", [])
    ]
    if not counts:
        return gettext("No provider offers this treatment.")
    return gettext("No provider fits this request. Ruled out: %(reasons)s.", reasons=", ".join(counts))
