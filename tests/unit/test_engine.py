"""The matching engine on its own: plain data in, ranked matches out (no app, no database)."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.routing import engine
from leads.routing.engine import LeadProfile, ProviderProfile, rank_providers, rejection_reason

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TREATMENT, OTHER_TREATMENT = 1, 2
CONDITION, OTHER_CONDITION = 10, 11
CATEGORIES = {10: "Spinal cord injury", 11: "Spinal cord injury", 12: "Neurological", 13: "Orthopaedic"}


def lead(**changes) -> LeadProfile:
    base = LeadProfile(
        treatment_id=TREATMENT, condition_id=CONDITION, condition_category="Spinal cord injury", language="de"
    )
    return replace(base, **changes)


def provider(provider_id: int = 1, **changes) -> ProviderProfile:
    base = ProviderProfile(
        id=provider_id,
        name=f"Clinic {provider_id}",
        active=True,
        paused_until=None,
        has_notification_address=True,
        treatments={TREATMENT: "approved"},
        conditions={CONDITION: "Spinal cord injury", OTHER_CONDITION: "Spinal cord injury"},
        languages=frozenset({"da", "en", "de"}),
        weekly_capacity=10,
        assigned_this_week=0,
    )
    return replace(base, **changes)


def ranked_ids(result) -> list[int]:
    return [m.provider_id for m in result.matches]


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"active": False}, engine.INACTIVE),
        ({"paused_until": NOW + timedelta(days=3)}, engine.PAUSED_UNTIL),
        ({"treatments": {OTHER_TREATMENT: "approved"}}, engine.TREATMENT_NOT_OFFERED),
        ({"conditions": {12: "Neurological"}}, engine.CONDITION_NOT_ACCEPTED),
        ({"assigned_this_week": 10}, engine.CAPACITY_USED),
        ({"weekly_capacity": 0}, engine.CAPACITY_USED),
        ({"has_notification_address": False}, engine.NO_ADDRESS),
    ],
)
def test_each_hard_filter_keeps_the_provider_out_and_says_why(changes, reason):
    result = rank_providers(lead(), [provider(**changes)], now=NOW, top_n=3)
    assert result.matches == ()
    assert result.rejections == {1: reason}


def test_a_provider_that_already_had_this_patient_is_never_chosen_again():
    result = rank_providers(
        lead(excluded_provider_ids=frozenset({1})), [provider(1), provider(2)], now=NOW, top_n=3
    )
    assert ranked_ids(result) == [2]
    assert result.rejections == {1: engine.ALREADY_TRIED}


def test_a_pause_that_has_ended_no_longer_keeps_the_provider_out():
    assert rejection_reason(lead(), provider(paused_until=NOW - timedelta(minutes=1)), NOW) is None


def test_only_the_top_n_are_returned_best_first_with_ranks_from_one():
    providers = [provider(i, languages=frozenset({"de"} if i % 2 else {"da"})) for i in range(1, 7)]
    result = rank_providers(lead(), providers, now=NOW, top_n=3)
    assert ranked_ids(result) == [1, 3, 5]
    assert [m.rank for m in result.matches] == [1, 2, 3]
    assert [m.score for m in result.matches] == sorted((m.score for m in result.matches), reverse=True)


def test_speaking_the_patients_language_outranks_not_speaking_it():
    result = rank_providers(
        lead(language="ar"), [provider(1), provider(2, languages=frozenset({"ar", "en"}))], now=NOW, top_n=2
    )
    assert ranked_ids(result) == [2, 1]
    assert result.matches[1].components[1].details == ({"code": engine.LACKS_LANGUAGE, "language": "ar"},)
    language = {c.name: c for c in result.matches[0].components}["language"]
    assert language.points == language.max_points == 20
    assert language.details == ({"code": engine.SPEAKS_LANGUAGE, "language": "ar"},)


def test_an_approved_offer_outranks_an_investigational_one():
    result = rank_providers(
        lead(), [provider(1, treatments={TREATMENT: "investigational"}), provider(2)], now=NOW, top_n=2
    )
    assert ranked_ids(result) == [2, 1]
    specialty = result.matches[1].breakdown()["components"][0]
    assert specialty["details"][0] == {"code": engine.EVIDENCE, "evidence": "investigational"}


def test_a_clinic_focused_on_the_condition_outranks_a_generalist():
    generalist = provider(
        1, conditions={CONDITION: "Spinal cord injury", 12: "Neurological", 13: "Orthopaedic"}
    )
    result = rank_providers(lead(), [generalist, provider(2)], now=NOW, top_n=2)
    assert ranked_ids(result) == [2, 1]
    assert result.matches[1].components[0].details[1] == {
        "code": engine.IN_FIELD,
        "in_field": 1,
        "accepted": 3,
        "category": "Spinal cord injury",
    }


def test_a_provider_who_answers_fast_and_often_outranks_one_who_lets_leads_expire():
    reliable = provider(1, response_count=19, unanswered_count=1, median_response_seconds=2 * 3600)
    silent = provider(2, response_count=2, unanswered_count=8, median_response_seconds=4 * 86400)
    result = rank_providers(lead(), [silent, reliable], now=NOW, top_n=2)
    assert ranked_ids(result) == [1, 2]
    details = {c.name: c.details for c in result.matches[0].components}
    assert details["response_rate"] == ({"code": engine.ANSWERED, "answered": 19, "leads": 20},)
    assert details["response_time"] == ({"code": engine.MEDIAN_ANSWER, "seconds": 7200},)


def test_a_new_provider_without_history_is_counted_as_average_not_as_bad():
    newcomer = rank_providers(lead(), [provider(1)], now=NOW, top_n=1).matches[0]
    points = {c.name: c.points for c in newcomer.components}
    assert points["response_rate"] == 10.0 and points["response_time"] == 5.0
    details = {c.name: c.details for c in newcomer.components}
    assert details["response_rate"] == details["response_time"] == ({"code": engine.NO_ANSWERS_YET},)


def test_among_equals_the_least_recently_assigned_comes_first():
    providers = [
        provider(1, last_assigned_at=NOW - timedelta(hours=1)),
        provider(2, last_assigned_at=NOW - timedelta(days=2)),
        provider(3, last_assigned_at=None),
    ]
    result = rank_providers(lead(), providers, now=NOW, top_n=3)
    assert ranked_ids(result) == [3, 2, 1]
    last = [m.components[-1].details[-1] for m in result.matches]
    assert last == [
        {"code": engine.NEVER_ASSIGNED},
        {"code": engine.LAST_LEAD, "seconds": 2 * 86400},
        {"code": engine.LAST_LEAD, "seconds": 3600},
    ]


def test_a_provider_with_more_of_its_week_left_scores_higher_on_fairness():
    result = rank_providers(
        lead(), [provider(1, assigned_this_week=6), provider(2, assigned_this_week=1)], now=NOW, top_n=2
    )
    assert ranked_ids(result) == [2, 1]
    assert result.matches[1].breakdown()["components"][-1]["details"] == [
        {"code": engine.WEEK_LOAD, "assigned": 6, "capacity": 10},
        {"code": engine.NEVER_ASSIGNED},
    ]


def test_the_stored_breakdown_names_every_component_and_holds_codes_and_numbers_not_words():
    match = rank_providers(lead(), [provider(1)], now=NOW, top_n=1).matches[0]
    breakdown = match.breakdown()
    assert [c["name"] for c in breakdown["components"]] == [
        "specialty_fit",
        "language",
        "response_rate",
        "response_time",
        "fairness",
    ]
    assert sum(c["max"] for c in breakdown["components"]) == 100
    # 40 specialty + 20 language + 10 + 5 (no history: average) + 10 fairness
    assert breakdown["score"] == match.score == 85.0
    assert breakdown["components"][1]["details"] == [{"code": engine.SPEAKS_LANGUAGE, "language": "de"}]
    assert json.loads(json.dumps(breakdown)) == breakdown  # as the JSON column keeps it


def test_the_reason_no_provider_fits_counts_each_filter():
    providers = [
        provider(1, active=False),
        provider(2, assigned_this_week=10),
        provider(3, assigned_this_week=10),
    ]
    result = rank_providers(lead(), providers, now=NOW, top_n=3)
    assert result.ruled_out() == ((engine.CAPACITY_USED, 2), (engine.INACTIVE, 1))


def test_with_no_provider_at_all_nobody_is_ruled_out():
    assert rank_providers(lead(), [], now=NOW, top_n=3).ruled_out() == ()


# --- properties -------------------------------------------------------------------------------

times = st.one_of(
    st.none(),
    st.integers(min_value=-30 * 86400, max_value=30 * 86400).map(lambda s: NOW + timedelta(seconds=s)),
)


@st.composite
def providers_strategy(draw, max_size=12):
    ids = draw(st.lists(st.integers(min_value=1, max_value=10_000), unique=True, max_size=max_size))
    result = []
    for provider_id in ids:
        result.append(
            ProviderProfile(
                id=provider_id,
                name=f"Clinic {provider_id}",
                active=draw(st.booleans()),
                paused_until=draw(times),
                has_notification_address=draw(st.booleans()),
                treatments=draw(
                    st.dictionaries(
                        st.sampled_from([TREATMENT, OTHER_TREATMENT, 3]),
                        st.sampled_from(["approved", "clinical_trial", "investigational"]),
                    )
                ),
                conditions={
                    c: CATEGORIES[c] for c in draw(st.sets(st.sampled_from(sorted(CATEGORIES)), max_size=4))
                },
                languages=frozenset(draw(st.sets(st.sampled_from(["da", "en", "de", "ar", "pl"])))),
                weekly_capacity=draw(st.integers(min_value=0, max_value=6)),
                assigned_this_week=draw(st.integers(min_value=0, max_value=7)),
                response_count=draw(st.integers(min_value=0, max_value=500)),
                unanswered_count=draw(st.integers(min_value=0, max_value=500)),
                median_response_seconds=draw(
                    st.one_of(st.none(), st.integers(min_value=0, max_value=30 * 86400))
                ),
                last_assigned_at=draw(times),
            )
        )
    return result


leads = st.builds(
    LeadProfile,
    treatment_id=st.sampled_from([TREATMENT, OTHER_TREATMENT, 3]),
    condition_id=st.sampled_from(sorted(CATEGORIES)),
    condition_category=st.sampled_from(sorted(set(CATEGORIES.values()))),
    language=st.sampled_from(["da", "en", "de", "ar", "pl", "zh"]),
    excluded_provider_ids=st.frozensets(st.integers(min_value=1, max_value=10_000), max_size=5),
)
top_ns = st.integers(min_value=0, max_value=5)


def _is_eligible(lead_profile: LeadProfile, p: ProviderProfile) -> bool:
    # Written out independently of the engine's own filter code.
    return (
        p.active
        and (p.paused_until is None or p.paused_until <= NOW)
        and p.id not in lead_profile.excluded_provider_ids
        and lead_profile.treatment_id in p.treatments
        and lead_profile.condition_id in p.conditions
        and p.assigned_this_week < p.weekly_capacity
        and p.has_notification_address
    )


@given(leads, providers_strategy(), top_ns)
def test_property_only_eligible_providers_are_matched_and_as_many_as_allowed(lead_profile, providers, top_n):
    result = rank_providers(lead_profile, providers, now=NOW, top_n=top_n)
    eligible = {p.id for p in providers if _is_eligible(lead_profile, p)}
    matched = ranked_ids(result)
    assert set(matched) <= eligible
    assert len(matched) == len(set(matched)) == min(top_n, len(eligible))
    assert set(result.rejections) == {p.id for p in providers} - eligible


@given(leads, providers_strategy(), top_ns)
def test_property_a_paused_provider_never_gets_a_lead(lead_profile, providers, top_n):
    result = rank_providers(lead_profile, providers, now=NOW, top_n=top_n)
    paused = {p.id for p in providers if not p.active or (p.paused_until and p.paused_until > NOW)}
    assert paused.isdisjoint(ranked_ids(result))


@given(leads, providers_strategy(), top_ns, st.randoms(use_true_random=False))
def test_property_the_same_input_gives_the_same_output_in_any_order(lead_profile, providers, top_n, rnd):
    first = rank_providers(lead_profile, providers, now=NOW, top_n=top_n)
    again = rank_providers(lead_profile, list(providers), now=NOW, top_n=top_n)
    shuffled = list(providers)
    rnd.shuffle(shuffled)
    assert first == again == rank_providers(lead_profile, shuffled, now=NOW, top_n=top_n)


@given(leads, providers_strategy(), st.integers(min_value=1, max_value=5))
def test_property_the_breakdown_adds_up_to_the_score(lead_profile, providers, top_n):
    for match in rank_providers(lead_profile, providers, now=NOW, top_n=top_n).matches:
        stored = match.breakdown()
        points = [c["points"] for c in stored["components"]]
        assert stored["score"] == match.score == round(sum(points), 2)
        assert all(0 <= c["points"] <= c["max"] for c in stored["components"])


def _route_stream(providers: list[ProviderProfile], lead_profile: LeadProfile, count: int, top_n: int):
    """Route `count` leads one after another, as the service does (each assignment counts);
    yield the providers after each lead."""
    state = {p.id: p for p in providers}
    for step in range(count):
        now = NOW + timedelta(seconds=step)
        result = rank_providers(lead_profile, list(state.values()), now=now, top_n=top_n)
        for match in result.matches:
            p = state[match.provider_id]
            state[p.id] = replace(p, assigned_this_week=p.assigned_this_week + 1, last_assigned_at=now)
        yield state


@given(leads, providers_strategy(max_size=8), st.integers(min_value=1, max_value=3), st.integers(1, 40))
@settings(max_examples=60)
def test_property_capacity_is_never_exceeded_however_many_leads_arrive(lead_profile, providers, top_n, count):
    start = {p.id: p.assigned_this_week for p in providers}
    for state in _route_stream(providers, lead_profile, count, top_n):
        for p in providers:
            gained = state[p.id].assigned_this_week - start[p.id]
            assert gained == 0 or state[p.id].assigned_this_week <= p.weekly_capacity


@given(
    k=st.integers(min_value=2, max_value=9),
    top_n=st.integers(min_value=1, max_value=4),
    capacity=st.integers(min_value=1, max_value=2000),
    language=st.sampled_from(["de", "da"]),
)
@settings(max_examples=25, deadline=None)
def test_property_a_thousand_identical_leads_are_shared_evenly_among_equal_providers(
    k, top_n, capacity, language
):
    providers = [
        provider(i, weekly_capacity=capacity, response_count=3, median_response_seconds=600)
        for i in range(1, k + 1)
    ]
    for state in _route_stream(providers, lead(language=language), 1000, min(top_n, k)):
        counts = [p.assigned_this_week for p in state.values()]
        # Even after every single lead, not only at the end.
        assert max(counts) - min(counts) <= 1
    assert max(counts) <= capacity
    assert sum(counts) == min(1000 * min(top_n, k), capacity * k)
