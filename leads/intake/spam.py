"""Spam heuristics, pure. A lead that trips one is stored as `spam` for a coordinator to review,
never silently dropped: a real patient who trips a rule is not lost."""

import re

# Links as people and bots write them: bare addresses, and HTML or BBCode link tags.
_ADDRESS = re.compile(r"https?://|\bwww\.[^\s.]", re.IGNORECASE)
_LINK_TAG = re.compile(r"<a\s[^>]*href|\[url[\]=]", re.IGNORECASE)

# Phrases no patient asking for a treatment quote writes; kept short to avoid false alarms.
SPAM_PHRASES = (
    "backlink",
    "casino",
    "cialis",
    "crypto trading",
    "forex",
    "seo service",
    "viagra",
    "web traffic",
)


def count_links(text: str) -> int:
    """How many links `text` contains (a tag around an address counts once)."""
    text = text or ""
    return max(len(_ADDRESS.findall(text)), len(_LINK_TAG.findall(text)))


def spam_reasons(*, full_name: str, details: str, honeypot: str, max_links: int) -> list[dict]:
    """Why a request looks like spam (empty when it does not), without words: what each reason
    says and its values, as `leads.notes` words them for a coordinator."""
    reasons = []
    if (honeypot or "").strip():
        reasons.append({"what": "spam_hidden_field"})
    if count_links(full_name):
        reasons.append({"what": "spam_link_in_name"})
    links = count_links(details)
    if links > max_links:
        reasons.append({"what": "spam_links", "links": links, "most": max_links})
    text = f"{full_name}\n{details}".casefold()
    phrases = [phrase for phrase in SPAM_PHRASES if phrase in text]
    if phrases:
        reasons.append({"what": "spam_phrases", "phrases": ", ".join(phrases)})
    return reasons
