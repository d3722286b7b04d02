"""Consent texts are legal texts: a version once shown never changes."""

import pytest

from leads import consent


@pytest.mark.parametrize("key", sorted(consent.CONSENT_TEXTS))
def test_a_consent_text_is_never_edited_without_a_new_version(key):
    text = consent.CONSENT_TEXTS[key]
    assert text.key == key
    assert consent.RECORDED_HASHES.get(key) == text.sha256, (
        f"The wording of consent {key} changed. Add a new version instead, and record its hash."
    )


@pytest.mark.parametrize("language", ["en", "da", "de", "sv", "nb", "ar"])
def test_the_current_version_has_its_own_text_in_every_patient_language(language):
    text = consent.current(language)
    assert (text.version, text.language) == (consent.CURRENT_VERSION, language)
    assert consent.text_for(consent.CURRENT_VERSION, language) is text


def test_a_language_without_a_text_is_shown_the_english_one_and_recorded_so():
    text = consent.current("fi")
    assert text.language == "en" and text is consent.current()
    assert consent.text_for(consent.CURRENT_VERSION, "fi") is None


def test_the_hash_covers_every_word_the_patient_agreed_to():
    text = consent.current()
    edited = consent.ConsentText(text.version, text.share + " ", text.contact)
    assert edited.sha256 != text.sha256
