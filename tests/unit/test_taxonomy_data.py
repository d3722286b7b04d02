"""The demo taxonomy reads well on the form, where each treatment's evidence label is followed by
its description: the description does not say again what the label has just said."""

import json
import re

import pytest

from leads.dev.seed import DATA_DIR
from leads.intake.choices import EVIDENCE_LABELS

TREATMENTS = json.loads((DATA_DIR / "taxonomy.json").read_text(encoding="utf-8"))["treatments"]


def _phrases(text: str) -> set[str]:
    return {part.strip(" .").lower() for part in re.split(r"[.:;]", text) if part.strip(" .")}


@pytest.mark.parametrize("treatment", TREATMENTS, ids=lambda treatment: treatment["slug"])
def test_a_description_does_not_repeat_its_evidence_label(treatment):
    label = str(EVIDENCE_LABELS[treatment["evidence_status"]])
    first_sentence = re.split(r"(?<=\.)\s", treatment["description"])[0]
    assert not _phrases(first_sentence) & _phrases(label), (label, treatment["description"])
