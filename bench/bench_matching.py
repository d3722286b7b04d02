"""Speed of the matching engine: leads ranked per second against directories of 10, 100 and 1,000
providers, beside a baseline measured in the same run (a plain sort of the same provider list by
a precomputed key), so the ratio shows what filtering and scoring cost on this machine."""

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leads.routing.engine import LeadProfile, ProviderProfile, rank_providers

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SIZES = (10, 100, 1000)
TREATMENTS = range(1, 7)
CONDITIONS = {
    c: ("Spinal cord injury", "Neurological", "Orthopaedic", "Blood cancer")[c % 4] for c in range(1, 12)
}
LANGUAGES = ("da", "en", "de", "sv", "ar", "pl", "uk")


def directory(size: int, rng: random.Random) -> list[ProviderProfile]:
    providers = []
    for provider_id in range(1, size + 1):
        providers.append(
            ProviderProfile(
                id=provider_id,
                name=f"Clinic {provider_id}",
                active=rng.random() > 0.1,
                paused_until=NOW + timedelta(days=3) if rng.random() < 0.05 else None,
                has_notification_address=True,
                treatments={
                    t: rng.choice(["approved", "clinical_trial", "investigational"])
                    for t in rng.sample(TREATMENTS, rng.randint(1, 3))
                },
                conditions={c: CONDITIONS[c] for c in rng.sample(sorted(CONDITIONS), rng.randint(1, 5))},
                languages=frozenset(rng.sample(LANGUAGES, rng.randint(1, 4))),
                weekly_capacity=rng.randint(1, 20),
                assigned_this_week=rng.randint(0, 20),
                response_count=rng.randint(0, 200),
                unanswered_count=rng.randint(0, 50),
                median_response_seconds=rng.choice([None, rng.randint(600, 5 * 86400)]),
                last_assigned_at=rng.choice([None, NOW - timedelta(hours=rng.randint(1, 500))]),
            )
        )
    return providers


def leads(count: int, rng: random.Random) -> list[LeadProfile]:
    return [
        LeadProfile(
            treatment_id=rng.choice(TREATMENTS),
            condition_id=(condition := rng.choice(sorted(CONDITIONS))),
            condition_category=CONDITIONS[condition],
            language=rng.choice(LANGUAGES),
            excluded_provider_ids=frozenset(rng.sample(range(1, 50), 2)),
        )
        for _ in range(count)
    ]


def per_second(fn, items, rounds: int = 5) -> float:
    """Items handled per second: the median of `rounds` timed passes over `items`."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        rates.append(len(items) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    rng = random.Random(20261125)
    print(f"{'providers':>9}  {'matches/s':>12}  {'baseline sorts/s':>17}  {'engine cost':>12}  matched")
    for size in SIZES:
        providers = directory(size, rng)
        sample = leads(max(20, 20_000 // size), rng)
        baseline_key = {p.id: (p.assigned_this_week / p.weekly_capacity, p.id) for p in providers}

        def baseline(_lead, providers=providers, key=baseline_key):
            return sorted(providers, key=lambda provider: key[provider.id])[:3]

        def engine(lead, providers=providers):
            return rank_providers(lead, providers, now=NOW, top_n=3)

        engine_rate = per_second(engine, sample)
        baseline_rate = per_second(baseline, sample)
        matched = statistics.mean(len(engine(lead).matches) for lead in sample)
        print(
            f"{size:>9}  {engine_rate:>12,.0f}  {baseline_rate:>17,.0f}  "
            f"{baseline_rate / engine_rate:>11.1f}x  {matched:.2f} of 3"
        )
    print("engine cost = how many times longer one ranking takes than sorting the same list once.")


if __name__ == "__main__":
    main()
