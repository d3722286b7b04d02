"""The matching engine: which providers get a lead, in what order, and why.

Pure: plain dataclasses in, ranked matches with a score breakdown out. It imports neither
Flask nor the database session nor Celery, so it is tested and benchmarked on its own.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leads.workflow import provider_paused

APPROVED, CLINICAL_TRIAL, INVESTIGATIONAL = "approved", "clinical_trial", "investigational"

# Hard-filter reasons, the values of MatchResult.rejections: codes, stored in a lead's status
# reason and worded in the reader's language where they are shown (`leads/notes.py`).
INACTIVE = "inactive"
PAUSED_UNTIL = "paused"
NO_ADDRESS = "no_address"
TREATMENT_NOT_OFFERED = "treatment_not_offered"
CONDITION_NOT_ACCEPTED = "condition_not_accepted"
CAPACITY_USED = "capacity_used"
ALREADY_TRIED = "already_tried"

# What earned a score component its points, the `code` of each of its details: stored with the
# detail's numbers and codes, never words, and worded in the reader's language where they are shown
# (leads/routing/breakdown.py).
EVIDENCE = "evidence"  # evidence: the status the provider offers the treatment under
IN_FIELD = "in_field"  # in_field of its accepted conditions are in the lead's category
SPEAKS_LANGUAGE = "speaks_language"  # language: the patient's, an ISO 639-1 code
LACKS_LANGUAGE = "lacks_language"
ANSWERED = "answered"  # answered of leads answered or expired
NO_ANSWERS_YET = "no_answers_yet"
MEDIAN_ANSWER = "median_answer"  # seconds
WEEK_LOAD = "week_load"  # assigned of capacity this week
LAST_LEAD = "last_lead"  # seconds since the provider's last lead
NEVER_ASSIGNED = "never_assigned"

# One day: a provider whose median answer takes a day earns half the speed points.
RESPONSE_TIME_HALF_POINTS_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Weights:
    """Maximum points per score component; the defaults add up to 100."""

    evidence: float = 30.0
    focus: float = 10.0
    language: float = 20.0
    response_rate: float = 20.0
    response_time: float = 10.0
    fairness: float = 10.0
    evidence_share: Mapping[str, float] = field(
        default_factory=lambda: {APPROVED: 1.0, CLINICAL_TRIAL: 0.85, INVESTIGATIONAL: 0.5}
    )


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class LeadProfile:
    """What the engine needs to know about a lead (no contact or medical free text)."""

    treatment_id: int
    condition_id: int
    condition_category: str
    language: str  # ISO 639-1 code of the patient's preferred language
    # Providers that already had this patient, on this lead or an earlier one.
    excluded_provider_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ProviderProfile:
    """A provider as the engine sees it, with this week's load and its answer history."""

    id: int
    name: str
    active: bool
    paused_until: datetime | None
    has_notification_address: bool
    # treatment id -> evidence status the provider offers it under
    treatments: Mapping[int, str]
    # condition id -> category, for every condition the provider accepts
    conditions: Mapping[int, str]
    languages: frozenset[str]
    weekly_capacity: int
    assigned_this_week: int
    response_count: int = 0
    unanswered_count: int = 0
    median_response_seconds: int | None = None
    last_assigned_at: datetime | None = None


@dataclass(frozen=True)
class ScoreComponent:
    name: str
    points: float
    max_points: float
    # Why, as facts without words: each a mapping of its `code` and its values (numbers, codes).
    details: tuple[Mapping[str, int | str], ...]


@dataclass(frozen=True)
class Match:
    provider_id: int
    provider_name: str
    rank: int
    score: float
    components: tuple[ScoreComponent, ...]

    def breakdown(self) -> dict:
        """The stored explanation of the score (JSON-ready): numbers and codes, worded where shown."""
        return {
            "score": self.score,
            "components": [
                {"name": c.name, "points": c.points, "max": c.max_points, "details": list(c.details)}
                for c in self.components
            ],
        }


@dataclass(frozen=True)
class MatchResult:
    matches: tuple[Match, ...]
    # provider id -> the first hard filter it failed
    rejections: Mapping[int, str]

    def ruled_out(self) -> tuple[tuple[str, int], ...]:
        """Why no provider fits: each hard-filter reason and how many providers it ruled out, the
        most first (then by reason); empty when no provider offers the treatment at all."""
        counts = Counter(self.rejections.values())
        return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def rank_providers(
    lead: LeadProfile,
    providers: Sequence[ProviderProfile],
    *,
    now: datetime,
    top_n: int,
    weights: Weights = DEFAULT_WEIGHTS,
) -> MatchResult:
    """The top `top_n` eligible providers for `lead`, best first; the same input gives the same output."""
    eligible: list[tuple[tuple, ProviderProfile, tuple[ScoreComponent, ...], float]] = []
    rejections: dict[int, str] = {}
    for provider in providers:
        reason = rejection_reason(lead, provider, now)
        if reason is not None:
            rejections[provider.id] = reason
            continue
        components = score_components(lead, provider, now, weights)
        score = round(sum(c.points for c in components), 2)
        eligible.append((_order_key(provider, score), provider, components, score))
    eligible.sort(key=lambda item: item[0])
    matches = tuple(
        Match(provider_id=p.id, provider_name=p.name, rank=rank, score=score, components=components)
        for rank, (_, p, components, score) in enumerate(eligible[: max(top_n, 0)], start=1)
    )
    return MatchResult(matches=matches, rejections=rejections)


def _order_key(provider: ProviderProfile, score: float) -> tuple:
    # Among equal scores: the least loaded this week, then the least recently assigned, then the id,
    # so equal providers take turns and the order never depends on the input order.
    load = provider.assigned_this_week / provider.weekly_capacity
    last = provider.last_assigned_at or datetime.min.replace(tzinfo=UTC)
    return (-score, load, last, provider.id)


def rejection_reason(lead: LeadProfile, provider: ProviderProfile, now: datetime) -> str | None:
    """The first hard filter `provider` fails for `lead`, or None when it is eligible."""
    if provider_paused(provider.active, provider.paused_until, now):
        return INACTIVE if not provider.active else PAUSED_UNTIL
    if provider.id in lead.excluded_provider_ids:
        return ALREADY_TRIED
    if lead.treatment_id not in provider.treatments:
        return TREATMENT_NOT_OFFERED
    if lead.condition_id not in provider.conditions:
        return CONDITION_NOT_ACCEPTED
    if provider.assigned_this_week >= provider.weekly_capacity:
        return CAPACITY_USED
    if not provider.has_notification_address:
        return NO_ADDRESS
    return None


def score_components(
    lead: LeadProfile, provider: ProviderProfile, now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> tuple[ScoreComponent, ...]:
    """The soft score of an eligible provider, one component per reason."""
    return (
        _specialty(lead, provider, weights),
        _language(lead, provider, weights),
        _response_rate(provider, weights),
        _response_time(provider, weights),
        _fairness(provider, now, weights),
    )


def _component(
    name: str, share: float, max_points: float, *details: Mapping[str, int | str]
) -> ScoreComponent:
    share = min(max(share, 0.0), 1.0)
    return ScoreComponent(
        name=name, points=round(share * max_points, 2), max_points=max_points, details=details
    )


def _specialty(lead: LeadProfile, provider: ProviderProfile, weights: Weights) -> ScoreComponent:
    # Better-established care first (approved, then within a trial), then clinics focused on the field.
    status = provider.treatments[lead.treatment_id]
    evidence_share = weights.evidence_share.get(status, 0.0)
    in_field = sum(1 for category in provider.conditions.values() if category == lead.condition_category)
    accepted = len(provider.conditions)
    max_points = weights.evidence + weights.focus
    points = evidence_share * weights.evidence + in_field / accepted * weights.focus
    return _component(
        "specialty_fit",
        points / max_points if max_points else 0.0,
        max_points,
        {"code": EVIDENCE, "evidence": status},
        {"code": IN_FIELD, "in_field": in_field, "accepted": accepted, "category": lead.condition_category},
    )


def _language(lead: LeadProfile, provider: ProviderProfile, weights: Weights) -> ScoreComponent:
    if lead.language in provider.languages:
        return _component(
            "language", 1.0, weights.language, {"code": SPEAKS_LANGUAGE, "language": lead.language}
        )
    return _component("language", 0.0, weights.language, {"code": LACKS_LANGUAGE, "language": lead.language})


def _response_rate(provider: ProviderProfile, weights: Weights) -> ScoreComponent:
    answered, unanswered = provider.response_count, provider.unanswered_count
    # Laplace smoothing: a new provider starts at one half instead of at nothing.
    share = (answered + 1) / (answered + unanswered + 2)
    if answered + unanswered == 0:
        detail = {"code": NO_ANSWERS_YET}
    else:
        detail = {"code": ANSWERED, "answered": answered, "leads": answered + unanswered}
    return _component("response_rate", share, weights.response_rate, detail)


def _response_time(provider: ProviderProfile, weights: Weights) -> ScoreComponent:
    seconds = provider.median_response_seconds
    if seconds is None:
        return _component("response_time", 0.5, weights.response_time, {"code": NO_ANSWERS_YET})
    seconds = max(seconds, 0)
    share = RESPONSE_TIME_HALF_POINTS_SECONDS / (RESPONSE_TIME_HALF_POINTS_SECONDS + seconds)
    return _component(
        "response_time", share, weights.response_time, {"code": MEDIAN_ANSWER, "seconds": seconds}
    )


def _fairness(provider: ProviderProfile, now: datetime, weights: Weights) -> ScoreComponent:
    used, capacity = provider.assigned_this_week, provider.weekly_capacity
    if provider.last_assigned_at is None:
        last = {"code": NEVER_ASSIGNED}
    else:
        last = {"code": LAST_LEAD, "seconds": max(int((now - provider.last_assigned_at).total_seconds()), 0)}
    return _component(
        "fairness",
        1 - used / capacity,
        weights.fairness,
        {"code": WEEK_LOAD, "assigned": used, "capacity": capacity},
        last,
    )
