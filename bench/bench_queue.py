"""How fast the coordinator queue stays with many leads: first page, deep pages, filters,
searches and the bounded counts, and the stats page's data, against a primary-key lookup
measured in the same run.

    python bench/bench_queue.py [--leads 200000] [--rounds 15] [--database-url URL | --postgresql]

Builds a throwaway database through the real migrations (SQLite in a temporary folder unless
--database-url names another, or --postgresql starts a throwaway PostgreSQL cluster), fills it
with a realistic mix (most leads closed long ago, a few hundred waiting; on PostgreSQL with
set-based SQL over generate_series: three years of leads, assignments and events), and prints
figures. The stats page's daily summaries are computed for every day as part of the setup (as
beat keeps them), so the stats rows measure the page as it runs: summary rows for whole days,
live queries for today. No assertions: numbers for a person to read. `make bench` runs it on PostgreSQL with
BENCH_DASHBOARD_LEADS leads (1,000,000 unless set).
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _support import ROWS_FILE, Servers, row  # noqa: E402  (bench/ is on the path above)
from flask_migrate import upgrade

import config
from leads import create_app
from leads.dev import seed
from leads.extensions import db
from leads.models import Assignment, Condition, Consent, Lead, Provider, ProviderTreatment, Treatment, User
from leads.models.catalog import provider_condition
from leads.models.lead import REFERENCE_ALPHABET, email_key, new_reference
from leads.routing import responses
from leads.routing import service as routing
from leads.staff import queue, stats, stats_summary
from leads.staff.queue import Cursor, QueueFilters
from leads.timeutil import utcnow

COUNTRIES = ["DE", "NO", "SE", "GB", "US", "NL", "PL", "FR", "ES", "IT", "AE", "SA", "UA", "RO", "IE"]
SOURCES = [None, None, None, "google", "facebook", "magazine", "newsletter", "partner", "instagram", "tiktok"]
CLOSED = ["booked", "closed_lost", "contacted", "quoted", "spam", "duplicate", "withdrawn"]


def build(leads: int, seed_value: int = 7) -> None:
    seed.load_taxonomy()
    seed.load_demo_providers()
    unusable = "not-an-argon2-hash"  # bench accounts never sign in
    users = [
        User(email=f"staff{i}@bench.example", password_hash=unusable, role="coordinator") for i in range(10)
    ]
    db.session.add_all(users)
    db.session.commit()
    add_leads(leads, seed_value)


def add_leads(leads: int, seed_value: int = 7) -> None:
    """Add `leads` leads of two years (most closed long ago, a few being worked on), with their
    assignments, to the taxonomy, providers and staff already in the database; then ANALYZE, as
    autovacuum keeps a database's statistics. Row by row from Python: both databases."""
    rng = random.Random(seed_value)
    treatments = db.session.scalars(sa.select(Treatment.id)).all()
    conditions = db.session.scalars(sa.select(Condition.id)).all()
    providers = db.session.scalars(sa.select(Provider.id)).all()
    user_ids = db.session.scalars(sa.select(User.id)).all()
    now = utcnow()
    references: set[str] = set()
    batch, assignments = [], []
    for n in range(leads):
        age = timedelta(seconds=rng.uniform(0, 730 * 86400))
        created = now - age
        if age < timedelta(days=3):  # the recent ones are still being worked on
            status = rng.choice(["new", "routed", "routed", "contacted", "needs_review", "unroutable"])
        elif rng.random() < 0.002:
            status = rng.choice(["unroutable", "needs_review", "routed", "new"])  # stuck: overdue
        else:
            status = rng.choice(CLOSED)
        reference = new_reference()
        while reference in references:
            reference = new_reference()
        references.add(reference)
        batch.append(
            {
                "reference": reference,
                "status": status,
                "full_name": f"Patient {rng.choice('ABCDEFGHJK')}{n:07d} Jensen",
                "email": f"patient{n}@example.org",
                "email_key": email_key(f"patient{n}@example.org"),
                "phone": f"+49{150000000 + n}",
                "country": rng.choice(COUNTRIES),
                "preferred_language": "en",
                "treatment_id": rng.choice(treatments),
                "condition_id": rng.choice(conditions),
                "details": "Bench lead.",
                "timeframe": "3-6-months",
                "budget": "20000-50000-eur",
                "contact_preference": "email",
                "utm_source": rng.choice(SOURCES),
                "assigned_to_id": rng.choice(user_ids) if user_ids and rng.random() < 0.3 else None,
                "sla_due_at": created + timedelta(hours=24),
                "created_at": created,
                "updated_at": created,
            }
        )
        if len(batch) == 10_000 or n == leads - 1:
            first_id = (db.session.scalar(sa.select(sa.func.max(Lead.id))) or 0) + 1
            db.session.execute(sa.insert(Lead), batch)
            for offset, row in enumerate(batch):
                if row["status"] not in ("new", "needs_review", "spam", "duplicate") and rng.random() < 0.5:
                    assignments.append(
                        {
                            "lead_id": first_id + offset,
                            "provider_id": rng.choice(providers),
                            "rank": 1,
                            "score": 50.0,
                            "score_breakdown": {},
                            "status": "accepted",
                            "created_at": row["created_at"],
                            "updated_at": row["created_at"],
                        }  # fmt: skip
                    )
            if assignments:
                db.session.execute(sa.insert(Assignment), assignments)
            db.session.commit()
            batch, assignments = [], []
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


def build_set_based(leads: int, seed_value: int = 7) -> None:
    """PostgreSQL: leads, assignments and events made by the database itself (generate_series)."""
    seed.load_taxonomy()
    seed.load_demo_providers()
    unusable = "not-an-argon2-hash"  # bench accounts never sign in
    db.session.add_all(
        User(email=f"staff{i}@bench.example", password_hash=unusable, role="coordinator") for i in range(10)
    )
    db.session.commit()
    ids = {
        "treatments": db.session.scalars(sa.select(Treatment.id)).all(),
        "conditions": db.session.scalars(sa.select(Condition.id)).all(),
        "providers": db.session.scalars(sa.select(Provider.id)).all(),
        "users": db.session.scalars(sa.select(User.id)).all(),
    }
    # A reference as the app makes them: Q- and six characters of its alphabet, one per number n.
    size = len(REFERENCE_ALPHABET)
    reference = " || ".join(f"substr(:alphabet, ((n / {size**k}) % {size})::int + 1, 1)" for k in range(6))
    pick = "(CAST(:{0} AS {1}[]))[1 + floor(random() * cardinality(CAST(:{0} AS {1}[])))::int]"
    db.session.execute(sa.text("SELECT setseed(:seed)"), {"seed": seed_value / 100})
    db.session.execute(
        sa.text(
            f"""
            INSERT INTO lead (reference, status, full_name, email, email_key, phone, country,
                preferred_language, treatment_id, condition_id, details, timeframe, budget,
                contact_preference, utm_source, assigned_to_id, sla_due_at, created_at, updated_at)
            SELECT 'Q-' || {reference},
                CASE WHEN created > now() - interval '3 days' THEN {pick.format("open", "text")}
                     WHEN random() < 0.002 THEN {pick.format("stuck", "text")}
                     ELSE {pick.format("closed", "text")} END,
                'Patient ' || chr(65 + n % 10) || lpad(n::text, 7, '0') || ' Jensen',
                -- The address is lower-case ASCII: its own key (leads.models.lead.email_key).
                'patient' || n || '@example.org', 'patient' || n || '@example.org', '+49' || (150000000 + n),
                {pick.format("countries", "text")},
                'en', {pick.format("treatments", "int")}, {pick.format("conditions", "int")}, 'Bench lead.',
                '3-6-months', '20000-50000-eur', 'email', {pick.format("sources", "text")},
                CASE WHEN random() < 0.3 THEN {pick.format("users", "int")} END,
                created + interval '24 hours', created, created
            FROM (SELECT n, now() - random() * interval '1095 days' AS created
                  FROM generate_series(1, :leads) AS n) AS generated
            """  # noqa: S608 (the inserted pieces are this file's constants)
        ),
        {
            "leads": leads,
            "alphabet": REFERENCE_ALPHABET,
            "open": ["new", "routed", "routed", "contacted", "needs_review", "unroutable"],
            "stuck": ["unroutable", "needs_review", "routed", "new"],
            "closed": CLOSED,
            "countries": COUNTRIES,
            "sources": [source or "" for source in SOURCES],
            **ids,
        },
    )
    db.session.execute(sa.text("UPDATE lead SET utm_source = NULL WHERE utm_source = ''"))
    db.session.execute(
        sa.text(
            f"""
            INSERT INTO assignment (lead_id, provider_id, rank, score, score_breakdown, status, created_at,
                responded_at, expired_at)
            SELECT id, provider, 1, 50.0, '{{}}', status, created_at,
                CASE WHEN status <> 'expired' THEN created_at + random() * interval '2 days' END,
                CASE WHEN status = 'expired' THEN created_at + interval '5 days' END
            FROM (SELECT id, created_at, {pick.format("providers", "int")} AS provider,
                      CASE WHEN random() < 0.6 THEN 'accepted' WHEN random() < 0.5 THEN 'declined'
                           ELSE 'expired' END AS status
                  FROM lead WHERE status NOT IN ('new', 'needs_review', 'spam', 'duplicate')
                      AND random() < 0.8) AS picked
            """  # noqa: S608
        ),
        {"providers": ids["providers"]},
    )
    db.session.execute(
        sa.text(
            """
            INSERT INTO lead_event (lead_id, kind, actor_type, to_status, created_at)
            SELECT id, 'submitted', 'patient', 'new', created_at FROM lead
            UNION ALL
            SELECT id, 'status_changed', 'system', status, created_at + interval '1 hour'
            FROM lead WHERE status <> 'new'
            """
        )
    )
    db.session.commit()


def measure(fn, rounds: int) -> list[float]:
    fn()  # warm the caches once
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        db.session.rollback()
    return samples


def route_new_leads(rounds: int) -> list[float]:
    """Seconds to route each of `rounds` new leads as the worker does: lock the lead and the
    candidates, count the week's assignments, rank, write assignments, events and emails, commit
    (and publish). Each lead is written before its clock starts; capacities are lifted, so every
    one is routed to three providers."""
    db.session.execute(sa.update(Provider).values(weekly_capacity=10**6))
    treatment_id, condition_id = db.session.execute(
        sa.select(ProviderTreatment.treatment_id, provider_condition.c.condition_id)
        .join(provider_condition, provider_condition.c.provider_id == ProviderTreatment.provider_id)
        .join(Treatment, Treatment.id == ProviderTreatment.treatment_id)
        .where(Treatment.requires_review.is_(False))
        .group_by(ProviderTreatment.treatment_id, provider_condition.c.condition_id)
        .order_by(sa.func.count().desc())
        .limit(1)
    ).one()
    first = db.session.scalar(sa.select(sa.func.max(Lead.id))) + 1  # a new patient each time
    db.session.commit()
    samples = []
    for n in range(first, first + rounds + 1):  # the first warms the caches
        now = utcnow()
        # A million references fill about one in 900 of the alphabet's: draw until one is free, as
        # the intake does when the unique key refuses one.
        reference = new_reference()
        while db.session.scalar(sa.select(Lead.id).where(Lead.reference == reference)) is not None:
            reference = new_reference()
        lead = Lead(
            reference=reference, status="new", full_name=f"Routed Patient {n}",
            email=f"routed{n}@bench.example", phone=f"+4530{n % 10**6:06d}", country="DE",
            preferred_language="de",
            treatment_id=treatment_id, condition_id=condition_id, details="Bench lead.",
            timeframe="3-6-months", budget="20000-50000-eur", contact_preference="email",
            sla_due_at=now + timedelta(hours=24), created_at=now,
            consent=Consent(text_version="bench", share_with_providers=True, contact=True,
                            source_form="bench"),
        )  # fmt: skip
        db.session.add(lead)
        db.session.commit()
        start = time.perf_counter()
        outcome = routing.route_lead(lead.id)
        if n > first:
            samples.append(time.perf_counter() - start)
        if outcome != "routed":
            raise RuntimeError(f"bench lead {lead.id} was not routed: {outcome}")
    return samples


def refresh_every_provider() -> None:
    """Every provider's answer statistics, as answers and expiries keep them in a running service."""
    for provider_id in db.session.scalars(sa.select(Provider.id)).all():
        responses.refresh_provider_stats(provider_id)
    db.session.commit()


def summarise_every_day() -> None:
    """The stats summaries of every day with leads, as beat and `flask stats rebuild` make them."""
    first = db.session.scalar(sa.select(sa.func.min(Lead.created_at))).date()
    today = utcnow().date()
    started = time.perf_counter()
    days = stats_summary.summarise(first + timedelta(days=n) for n in range((today - first).days + 1))
    print(f"stats summaries of {days:,} days computed in {time.perf_counter() - started:.0f} s")


def report(label: str, samples: list[float], baseline: float | None, note: str = "") -> float:
    median = statistics.median(samples)
    worst = max(samples)
    if ROWS_FILE:  # in make bench's table: the rounds' median, spread and p95 beside a primary-key lookup
        p95 = sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000
        rounds = [sample * 1000 for sample in samples]
        row("Dashboard", label, "ms", rounds, [baseline * 1000] if baseline else None,
            "primary-key lookup" if baseline else "", f"p95 {p95:.1f} ms{note}")  # fmt: skip
        return median
    ratio = f"x{median / baseline:8.1f}" if baseline else "  (baseline)"
    print(f"{label:<52} median {median * 1000:8.2f} ms   max {worst * 1000:8.2f} ms   {ratio}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--postgresql", action="store_true", help="on a throwaway PostgreSQL cluster")
    options = parser.parse_args()
    with Servers("bench-dashboard-") as servers:  # Redis: a routing publishes its emails' task
        if options.postgresql:
            url = servers.postgresql()
        else:
            url = options.database_url or f"sqlite:///{servers.work / 'bench.db'}"
        run(options, url, servers.redis())


def run(options, url: str, redis_url: str) -> None:
    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=redis_url)
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        if db.engine.dialect.name == "postgresql":
            build_set_based(options.leads)
            db.session.commit()
            # As autovacuum keeps a running service's tables: planner statistics, and the visibility
            # map that lets an index answer a count alone (routing's count of the week's assignments).
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
        else:
            build(options.leads)
        refresh_every_provider()
        total = db.session.scalar(sa.select(sa.func.count(Lead.id)))
        print(f"{total:,} leads on {db.engine.dialect.name}, built in {time.perf_counter() - started:.0f} s")
        summarise_every_day()
        rng = random.Random(11)
        ids = db.session.scalars(sa.select(Lead.id).order_by(Lead.id)).all()
        sample = db.session.execute(
            sa.select(Lead.reference, Lead.email, Lead.phone).where(Lead.id == ids[len(ids) // 2])
        ).one()
        me = db.session.scalar(sa.select(User.id).limit(1))
        treatment = db.session.scalar(sa.select(Treatment.id).limit(1))
        provider = db.session.scalar(sa.select(Provider.id).limit(1))
        oldest = db.session.execute(
            sa.select(Lead.created_at, Lead.id).order_by(Lead.created_at, Lead.id).limit(1).offset(500)
        ).one()
        limit = 50
        now = utcnow()
        rounds = options.rounds

        def page(filters=None, after=None):
            filters = filters or QueueFilters()
            return lambda: queue.fetch_page(filters, limit=limit, after=after, now=now)

        def twentieth_cursor():
            cursor = None
            for _ in range(20):
                cursor = Cursor.decode(
                    queue.fetch_page(QueueFilters(), limit=limit, after=cursor, now=now).next_cursor
                )
            return cursor

        print(f"{rounds} rounds each, page size {limit}; ratio = median / primary-key lookup median\n")
        base = report(
            "baseline: one lead by primary key",
            measure(
                lambda: db.session.execute(sa.select(Lead).where(Lead.id == rng.choice(ids))).one(), rounds
            ),
            None,
        )
        a_year_ago = QueueFilters(
            created_from=(now - timedelta(days=400)).date(), created_to=(now - timedelta(days=370)).date()
        )
        cases = [
            ("queue, first page (no filter)", page()),
            ("queue, page 21 (keyset cursor)", page(after=twentieth_cursor())),
            ("queue, a page among the oldest leads", page(after=Cursor(3, oldest.created_at, oldest.id))),
            ("bounded count (no filter, stops at 1,000)", lambda: queue.count_matching(QueueFilters(), now)),
            ("needs-attention counts (6 bounded counts)", lambda: queue.attention_counts(me, now)),
            ("filter: status = new", page(QueueFilters(status="new"))),
            ("filter: any open status", page(QueueFilters(status="open"))),
            ("filter: overdue only", page(QueueFilters(overdue=True))),
            ("filter: left by an erasure at its deadline", page(QueueFilters(left_by_erasure=True))),
            ("filter: country = NO", page(QueueFilters(country="NO"))),
            ("filter: source = magazine", page(QueueFilters(source="magazine"))),
            ("filter: treatment", page(QueueFilters(treatment_id=treatment))),
            ("filter: provider (through assignments)", page(QueueFilters(provider_id=provider))),
            ("filter: mine", page(QueueFilters(assigned="mine", user_id=me))),
            ("filter: received in one month, a year ago", page(a_year_ago)),
            (
                "filter: country + status + source",
                page(QueueFilters(country="DE", status="booked", source="google")),
            ),
            ("search: reference", page(QueueFilters(q=sample.reference))),
            ("search: email, exact", page(QueueFilters(q=sample.email))),
            ("search: email, typed in capitals", page(QueueFilters(q=sample.email.upper()))),
            ("search: email nobody has (email key index)", page(QueueFilters(q="Nobody@Example.org"))),
            ("search: phone, international", page(QueueFilters(q=sample.phone))),
            (
                "search: phone, national number (215 country codes)",
                page(QueueFilters(q="0" + sample.phone[3:])),
            ),
            ("search: phone, last 6 digits (suffix scan)", page(QueueFilters(q=sample.phone[-6:]))),
            ("search: part of a name (scan)", page(QueueFilters(q="K0100"))),
            ("search: a name nobody has (full scan)", page(QueueFilters(q="Nobody Atall"))),
        ]  # fmt: skip
        for label, fn in cases:
            report(label, measure(fn, rounds), base)
        today = now.date()
        for days in (30, 365):
            period = stats.Period.last_days(days, today)
            report(
                f"stats page data, last {days} days",
                measure(lambda p=period: stats.collect(p, now), 5),
                base,
                "; daily summaries (computed in setup) + today live",
            )

        # Last: it lifts the providers' capacities and adds leads of its own.
        report(
            "routing one new lead (route_lead)",
            route_new_leads(rounds),
            base,
            f"; {db.session.scalar(sa.select(sa.func.count(Assignment.id))):,} assignments in the database",
        )


if __name__ == "__main__":
    main()
