"""Versioned consent wording, one file per version and language in data/consent/. A version,
once shown to patients, is never edited: change the wording by adding a new file and pointing
CURRENT_VERSION at it. Each version's SHA-256 is recorded in RECORDED_HASHES, so editing a shown
text without a new version fails a test."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

# Where the quote form records that consent was given (Consent.source_form).
SOURCE_QUOTE_FORM = "public_quote_form"


@dataclass(frozen=True)
class ConsentText:
    version: str
    share: str  # sharing the request with matched Danish providers
    contact: str  # being contacted about the request
    language: str = "en"

    @property
    def sha256(self) -> str:
        """The hash stored with each consent: proof of the exact words the patient agreed to."""
        return hashlib.sha256(f"{self.share}\n{self.contact}".encode()).hexdigest()


def _load_texts() -> dict[str, ConsentText]:
    """Every version from data/consent/<version>.<language>.json."""
    texts = {}
    for path in sorted(CONSENT_DIR.glob("*.json")):
        text = ConsentText(**json.loads(path.read_text(encoding="utf-8")))
        if path.name != f"{text.version}.{text.language}.json":
            raise ValueError(f"{path.name} holds version {text.version} in '{text.language}': rename it")
        texts[text.version] = text
    return texts


CONSENT_DIR = Path(__file__).resolve().parent.parent / "data" / "consent"
CONSENT_TEXTS: dict[str, ConsentText] = _load_texts()

CURRENT_VERSION = "2026-11-v1"

# Written when a version is first shown and never changed afterwards.
RECORDED_HASHES = {
    "2026-11-v1": "89e9c918a79098334709184dae20710a9fee9b895276e37a406fe0204635c44c",
}


def current() -> ConsentText:
    """The wording the form shows today."""
    return CONSENT_TEXTS[CURRENT_VERSION]


def text_for(version: str | None) -> ConsentText | None:
    """The wording of a version the form has shown, or None for an unknown version."""
    return CONSENT_TEXTS.get(version or "")
