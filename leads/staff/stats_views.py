"""Pipeline statistics at /staff/stats over a chosen period."""

from datetime import timedelta

from flask import current_app, render_template, request
from flask_babel import format_date
from flask_babel import gettext as _

from leads.auth import staff_required
from leads.staff import bp, charts, stats
from leads.staff.forms import StatsPeriodForm
from leads.staff.labels import label
from leads.staff.queue import NO_SOURCE_FILTER
from leads.staff.stats_live import NO_SOURCE
from leads.timeutil import utcnow

DEFAULT_DAYS = 30
PRESETS = (7, 30, 90, 365)


def _period(form: StatsPeriodForm, today) -> stats.Period:
    start, end = form.start.data, form.end.data
    if start and end:
        return stats.Period(start, end)
    if start:
        return stats.Period(start, max(start, today))
    if end:
        return stats.Period(end - timedelta(days=DEFAULT_DAYS - 1), end)
    return stats.Period.last_days(DEFAULT_DAYS, today)


def _named(rows: list[tuple[str | None, int]]) -> list[tuple[str, int]]:
    """A `top` list with its rest named in the reader's words."""
    return [(key if key is not None else _("Other"), n) for key, n in rows]


def source_rows(rows: list[tuple[str | None, int]]) -> list[tuple[str, int, str | None]]:
    """The sources of a `top` list as the page shows them: (name in the reader's words, leads,
    the queue's source filter for them, None for the rest). Leads without a utm_source are named
    in the reader's language; their link carries the queue's language-independent value."""
    shown = []
    for key, count in rows:
        if key is None:
            shown.append((_("Other"), count, None))
        elif key == NO_SOURCE:
            shown.append((_("Direct (no utm_source)"), count, NO_SOURCE_FILTER))
        else:
            shown.append((key, count, key))
    return shown


def build_charts(report: stats.StatsReport) -> dict:
    """The SVG charts of a report; the template shows the same numbers as tables."""
    days = report.per_day
    busiest = max(days, key=lambda d: d[1]) if days else None
    return {
        "per_day": charts.column_chart(
            "chart-per-day",
            [(format_date(d, "d MMM"), n) for d, n in days],
            title=_("Leads per day"),
            desc=_("%(total)d leads over %(days)d days.", total=report.total, days=len(days))
            + (
                " "
                + _(
                    "The busiest day was %(day)s with %(count)d.",
                    day=format_date(busiest[0], "d MMM"),
                    count=busiest[1],
                )
                if busiest and busiest[1]
                else ""
            ),
        ),
        "funnel": charts.bar_chart(
            "chart-funnel",
            [(label(stage), n) for stage, n in report.funnel],
            title=_("Funnel"),
            desc=", ".join(f"{label(stage)}: {n}" for stage, n in report.funnel),
        ),
        "providers": charts.bar_chart(
            "chart-providers",
            [(p.name, p.assignments) for p in report.providers[:15]],
            title=_("Assignments per provider"),
            desc=", ".join(f"{p.name}: {p.assignments}" for p in report.providers[:15])
            or _("No assignments"),
        ),
        "sources": charts.bar_chart(
            "chart-sources",
            [(name, n) for name, n, _filter in source_rows(report.by_source)],
            title=_("Leads by source"),
            desc=", ".join(f"{name}: {n}" for name, n, _filter in source_rows(report.by_source))
            or _("No leads"),
        ),
        "countries": charts.bar_chart(
            "chart-countries",
            _named(report.by_country),
            title=_("Leads by country"),
            desc=", ".join(f"{k}: {n}" for k, n in _named(report.by_country)) or _("No leads"),
        ),
    }


@bp.get("/stats")
@staff_required
def stats_page():
    form = StatsPeriodForm(formdata=request.args)
    report = chart_set = delivery = None
    now = utcnow()
    if form.validate():
        period = _period(form, now.date())
        max_days = current_app.config["STATS_MAX_DAYS"]
        if period.days > max_days:
            form.end.errors = [_("Choose a period of at most %(days)d days", days=max_days)]
        else:
            form.start.data, form.end.data = period.start, period.end  # show the period used
            report = stats.collect(period, now)
            chart_set = build_charts(report)
            delivery = stats.email_delivery(period)
    status = 200 if report else 400
    return render_template(
        "staff/stats.html",
        form=form,
        report=report,
        charts=chart_set,
        delivery=delivery,
        sources=source_rows(report.by_source) if report else [],
        presets=[(d, now.date() - timedelta(days=d - 1)) for d in PRESETS],
        today=now.date(),
    ), status
