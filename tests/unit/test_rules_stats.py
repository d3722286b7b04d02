"""Provider statistics on the stats page hold only real answers and expiries against a provider."""

from leads.staff.stats import provider_stats


def test_assignments_ended_by_the_patient_or_a_coordinator_are_neither_open_nor_held_against_anyone():
    rows = [
        (1, "Clinic", "accepted", 2),
        (1, "Clinic", "expired", 1),
        (1, "Clinic", "notified", 3),
        (1, "Clinic", "withdrawn", 4),
        (1, "Clinic", "closed", 5),
    ]
    (stats,) = provider_stats(rows, {})
    assert (stats.assignments, stats.accepted, stats.expired, stats.open) == (15, 2, 1, 3)
    assert stats.acceptance_rate == 2 / 3
