"""The raw figures of the stats page for some days: counts that add up, and the measured times
kept whole so that medians stay exact. Pure: the live queries and the daily summaries both make
them, `Figures.add` merges them, and JSON carries them in and out of the summary rows."""

import base64
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

# (provider id, assignment status, answered) -> assignments
AssignmentKey = tuple[int, str, bool]


@dataclass
class Figures:
    per_day: Counter = field(default_factory=Counter)  # date -> leads received
    by_status: Counter = field(default_factory=Counter)
    by_country: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    stage_ranks: Counter = field(default_factory=Counter)  # furthest funnel rank -> leads
    with_sla: int = 0
    breached: int = 0  # late as of `as_of`
    # Not taken in hand and not yet due at `as_of`: late once the clock passes `open_due_max`.
    sla_open: int = 0
    open_due_max: datetime | None = None
    assignments: Counter = field(default_factory=Counter)  # AssignmentKey -> count
    response_seconds: dict[int, list[float]] = field(default_factory=dict)  # provider id -> times
    leads_with_quote: int = 0
    quotes: int = 0
    chosen_leads: int = 0
    first_quote_seconds: list[float] = field(default_factory=list)
    provider_quotes: Counter = field(default_factory=Counter)  # provider id -> quotes
    provider_chosen: Counter = field(default_factory=Counter)  # provider id -> chosen quotes

    def add(self, other: "Figures") -> None:
        """Merge another set of days into this one (the days never overlap)."""
        for name in ("per_day", "by_status", "by_country", "by_source", "stage_ranks", "assignments",
                     "provider_quotes", "provider_chosen"):  # fmt: skip
            getattr(self, name).update(getattr(other, name))
        for name in ("with_sla", "breached", "sla_open", "leads_with_quote", "quotes", "chosen_leads"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.open_due_max and (self.open_due_max is None or other.open_due_max > self.open_due_max):
            self.open_due_max = other.open_due_max
        for provider_id, seconds in other.response_seconds.items():
            self.response_seconds.setdefault(provider_id, []).extend(seconds)
        self.first_quote_seconds.extend(other.first_quote_seconds)

    def settled(self, now: datetime) -> bool:
        """Whether the SLA breaches are known at `now`: every lead still open when these figures
        were made is due before `now` (so late), or none was open."""
        return not self.sla_open or (self.open_due_max is not None and self.open_due_max < now)

    def breaches(self) -> int:
        """The SLA breaches, once `settled`: the open leads have all become late."""
        return self.breached + self.sla_open

    def to_json(self) -> dict:
        return {
            "per_day": {day.isoformat(): n for day, n in self.per_day.items()},
            "by_status": dict(self.by_status),
            "by_country": dict(self.by_country),
            "by_source": dict(self.by_source),
            "stage_ranks": {str(rank): n for rank, n in self.stage_ranks.items()},
            "sla": [
                self.with_sla,
                self.breached,
                self.sla_open,
                self.open_due_max.isoformat() if self.open_due_max else None,
            ],  # fmt: skip
            "assignments": [
                [p, status, answered, n] for (p, status, answered), n in self.assignments.items()
            ],
            "response_seconds": {str(p): pack(seconds) for p, seconds in self.response_seconds.items()},
            "quotes": [self.leads_with_quote, self.quotes, self.chosen_leads],
            "first_quote_seconds": pack(self.first_quote_seconds),
            "provider_quotes": [[p, n, self.provider_chosen[p]] for p, n in self.provider_quotes.items()],
        }

    @classmethod
    def from_json(cls, data: dict) -> "Figures":
        with_sla, breached, sla_open, due_max = data["sla"]
        leads_with_quote, quotes, chosen_leads = data["quotes"]
        figures = cls(
            per_day=Counter({date.fromisoformat(day): n for day, n in data["per_day"].items()}),
            by_status=Counter(data["by_status"]),
            by_country=Counter(data["by_country"]),
            by_source=Counter(data["by_source"]),
            stage_ranks=Counter({int(rank): n for rank, n in data["stage_ranks"].items()}),
            with_sla=with_sla,
            breached=breached,
            sla_open=sla_open,
            open_due_max=datetime.fromisoformat(due_max) if due_max else None,
            assignments=Counter({(p, status, answered): n for p, status, answered, n in data["assignments"]}),
            response_seconds={int(p): unpack(seconds) for p, seconds in data["response_seconds"].items()},
            leads_with_quote=leads_with_quote,
            quotes=quotes,
            chosen_leads=chosen_leads,
            first_quote_seconds=unpack(data["first_quote_seconds"]),
        )
        for provider_id, count, chosen in data["provider_quotes"]:
            figures.provider_quotes[provider_id] += count
            figures.provider_chosen[provider_id] += chosen
        return figures


# A year of answer times is some 10^5 floats: as JSON numbers, parsing them is most of the page's
# time; packed as little-endian doubles in base64 they load at memory speed, bit for bit.
def pack(values: list[float]) -> str:
    doubles = array("d", values)
    if sys.byteorder == "big":
        doubles.byteswap()
    return base64.b64encode(doubles.tobytes()).decode("ascii")


def unpack(text: str) -> list[float]:
    doubles = array("d", base64.b64decode(text))
    if sys.byteorder == "big":
        doubles.byteswap()
    return doubles.tolist()
