"""`flask stats rebuild --from DAY --to DAY`: compute the stats page's daily summaries again."""

from datetime import date, datetime, timedelta

import click
from flask.cli import AppGroup

from leads.staff import stats_summary
from leads.timeutil import utcnow

stats_cli = AppGroup("stats", help="The stats page's daily summaries.")

# A few years of days is a few minutes of queries; more is surely a typo.
MAX_REBUILD_DAYS = 3660


def _day(value: str, option: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; write it as YYYY-MM-DD.", param_hint=option
        ) from None


@stats_cli.command("rebuild")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD", help="First UTC day.")
@click.option("--to", "last", metavar="YYYY-MM-DD", help="Last UTC day (default: today).")
def rebuild_command(first: str, last: str | None) -> None:
    """Compute the daily summaries of these UTC days again from the leads (safe to repeat)."""
    today = utcnow().date()
    start, end = _day(first, "--from"), _day(last, "--to") if last else today
    if start > end:
        raise click.BadParameter(f"{start} is after {end}.", param_hint="--from")
    if end > today:
        raise click.BadParameter(f"{end} has not come yet (today is {today}, UTC).", param_hint="--to")
    days = (end - start).days + 1
    if days > MAX_REBUILD_DAYS:
        raise click.BadParameter(f"{days} days is more than {MAX_REBUILD_DAYS} at once.", param_hint="--from")
    written = stats_summary.summarise(start + timedelta(days=n) for n in range(days))
    click.echo(f"Summarised {written} day(s), {start} to {end}.")
