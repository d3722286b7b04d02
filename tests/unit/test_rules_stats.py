"""Provider statistics on the stats page hold only real answers and expiries against a provider."""

from leads.staff.stats import provider_stats


def test_assignments_ended_by_the_patient_or_a_coordinator_are_neither_open_nor_held_against_anyone():
    rows = [
        (1, "Clinic", "accepted", True, 2),
        (1, "Clinic", "expired", False, 1),
        (1, "Clinic", "notified", False, 3),
        (1, "Clinic", "withdrawn", False, 4),
        (1, "Clinic", "closed", False, 5),
        (1, "Clinic", "not_chosen", False, 6),  # ended by the patient's choice before any answer
        (1, "Clinic", "closed", True, 7),  # chosen, then a coordinator's move ended the choice
    ]
    (stats,) = provider_stats(rows, {})
    assert (stats.assignments, stats.accepted, stats.expired, stats.open) == (28, 9, 1, 3)
    assert stats.acceptance_rate == 9 / 10
