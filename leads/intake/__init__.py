"""Intake of a patient's quote request.

- `cleaning`: pure cleaners for each form value (Invalid carries the patient's message)
- `spam`: pure spam heuristics
- `form_token`: the signed token behind the time trap and the one-time submission key
- `taxonomy`: the treatments and conditions on offer, as plain data, cached in each process
- `service`: duplicate detection and the one-transaction create (`submit_quote`)
"""

from leads.intake.cleaning import Invalid
from leads.intake.service import (
    FormAlreadyUsed,
    IntakeRejected,
    IntakeResult,
    QuoteRequest,
    confirmation_context,
    submit_quote,
)
from leads.intake.taxonomy import (
    Taxonomy,
    condition_problem,
    forget_taxonomy,
    load_taxonomy,
    offered_taxonomy,
)

__all__ = [
    "FormAlreadyUsed",
    "IntakeRejected",
    "IntakeResult",
    "Invalid",
    "QuoteRequest",
    "Taxonomy",
    "condition_problem",
    "confirmation_context",
    "forget_taxonomy",
    "load_taxonomy",
    "offered_taxonomy",
    "submit_quote",
]
