"""Consent texts are legal texts: a version once shown never changes."""

import pytest

from leads import consent


@pytest.mark.parametrize("version", sorted(consent.CONSENT_TEXTS))
def test_a_consent_text_is_never_edited_without_a_new_version(version):
    text = consent.CONSENT_TEXTS[version]
    assert text.version == version
    assert consent.RECORDED_HASHES.get(version) == text.sha256, (
        f"The wording of consent {version} changed. Add a new version instead, and record its hash."
    )


def test_the_hash_covers_every_word_the_patient_agreed_to():
    text = consent.current()
    edited = consent.ConsentText(text.version, text.share + " ", text.contact)
    assert edited.sha256 != text.sha256
