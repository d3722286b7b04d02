"""Versioned consent wording, one file per version and language in data/consent/. A text, once
shown to patients, is never edited: change the wording by adding new files and pointing
CURRENT_VERSION at them. Each text's SHA-256 is recorded in RECORDED_HASHES under its file's name
(`<version>.<language>`), so editing a shown text without a new version fails a test."""

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

    @property
    def key(self) -> str:
        return text_key(self.version, self.language)


def text_key(version: str | None, language: str | None) -> str:
    """How texts are named: `2026-11-v1.da`, as their files are."""
    return f"{version}.{language}"


def _load_texts() -> dict[str, ConsentText]:
    """Every version in every language from data/consent/<version>.<language>.json."""
    texts = {}
    for path in sorted(CONSENT_DIR.glob("*.json")):
        text = ConsentText(**json.loads(path.read_text(encoding="utf-8")))
        if path.name != f"{text.key}.json":
            raise ValueError(f"{path.name} holds version {text.version} in '{text.language}': rename it")
        texts[text.key] = text
    return texts


CONSENT_DIR = Path(__file__).resolve().parent.parent / "data" / "consent"
CONSENT_TEXTS: dict[str, ConsentText] = _load_texts()

CURRENT_VERSION = "2026-11-v1"

# Written when a text is first shown and never changed afterwards.
RECORDED_HASHES = {
    "2026-11-v1.en": "89e9c918a79098334709184dae20710a9fee9b895276e37a406fe0204635c44c",
    "2026-11-v1.da": "079cce16d30e3e61d8ae0ae298c95ada7700d6ab2ed895df6c9c3dd4d763cbf6",
    "2026-11-v1.de": "c5757136f27f5303eea067981268f8eb413f1c47a961d71db4a5102d67dea5a9",
    "2026-11-v1.sv": "a65c78188fe42820d40a435727356e88d56933271dbb00c5da32c9d88de9a737",
    "2026-11-v1.nb": "a1e1682b94e41378b6b0eaff6617f512ab845677ed5093e5bd8382c87c96d384",
    "2026-11-v1.ar": "44e4b990f09d5e00b5ca9ef35e1c48126f28fb89693f204f7aed549d57a1c858",
}

# The language a version falls back to where it has no text of the reader's language.
FALLBACK_LANGUAGE = "en"


def current(language: str = FALLBACK_LANGUAGE) -> ConsentText:
    """The wording the form shows today to a reader of `language` (English if it has none)."""
    return text_for(CURRENT_VERSION, language) or CONSENT_TEXTS[text_key(CURRENT_VERSION, FALLBACK_LANGUAGE)]


def text_for(version: str | None, language: str | None = FALLBACK_LANGUAGE) -> ConsentText | None:
    """The wording of a version in a language the form has shown, or None if there is none."""
    return CONSENT_TEXTS.get(text_key(version, language or FALLBACK_LANGUAGE))
