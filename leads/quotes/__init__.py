"""Quotes: a clinic's written offer to the patient, its revisions, the patient's choice."""
