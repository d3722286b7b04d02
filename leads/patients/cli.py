"""`flask privacy export REFERENCE_OR_EMAIL [--include REF]... [-o FILE]`,
`flask privacy erase REFERENCE_OR_EMAIL` and `flask privacy retention [--list | --apply]`."""

import json
import sys
import textwrap

import click
from flask import current_app
from flask.cli import AppGroup

from leads.extensions import db
from leads.patients import privacy

privacy_cli = AppGroup(
    "privacy", help="Answer a patient's access and erasure requests; preview or run retention."
)


# Why a linked request the export left out may be another person's.
LINKED_ONLY_BY = {
    privacy.OTHER_ADDRESS: "another linked request's email address",
    privacy.SAME_PHONE: "a phone number",
    privacy.DUPLICATE_MARK: "a duplicate mark",
}


@privacy_cli.command("export")
@click.argument("reference_or_email")
@click.option(
    "--include",
    "included",
    multiple=True,
    metavar="REF",
    help="Also export this linked request, once you have confirmed it is the same person's (repeatable).",
)
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), help="Write here (default: standard output)."
)
def export_command(reference_or_email: str, included: tuple[str, ...], output) -> None:
    """Everything held about the patient, as JSON: the requests sent from the named request's email
    address (or the address given). The others linked to them (by a phone number or a duplicate
    mark) may be another person's: they are named on standard error, and exported with --include."""
    try:
        requests = privacy.linked_requests(reference_or_email)
        listed = [request.lead.reference for request in requests]
        own = [request.lead.reference for request in requests if request.own]
        document = privacy.export_patient(
            reference_or_email, user_id=None, chosen=own + list(included), shown=listed
        )
    except (privacy.PatientNotFound, privacy.PatientRequestsChanged) as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    except privacy.ExportRefused as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc} The linked requests: {', '.join(listed)}.") from None
    json.dump(document, output or sys.stdout, ensure_ascii=False, indent=2)
    (output or sys.stdout).write("\n")
    exported = {request["reference"] for request in document["requests"]}
    for request in requests:
        reference = request.lead.reference
        if reference not in exported:
            click.echo(
                f"Left out {reference}: linked only by {LINKED_ONLY_BY[request.link]}; add --include "
                f"{reference} once you have confirmed it is the same person's.",
                err=True,
            )
    if output:
        click.echo(f"Wrote {len(document['requests'])} request(s) to {output.name}.", err=True)


@privacy_cli.command("erase")
@click.argument("reference_or_email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def erase_command(reference_or_email: str, yes: bool) -> None:
    """Erase the patient's personal and health data from every lead of theirs. Cannot be undone."""
    try:
        leads = privacy.patient_leads(reference_or_email)
    except privacy.PatientNotFound as exc:
        raise click.ClickException(str(exc)) from None
    references = [lead.reference for lead in leads]
    # Whom each names: a request linked by a shared phone number can be another person's.
    listing = "".join(f"\n  {lead.reference}  {lead.full_name} <{lead.email}> {lead.phone}" for lead in leads)
    db.session.rollback()
    click.echo(f"This erases the patient's data in {len(references)} request(s):{listing}")
    if not yes and not click.confirm("Erase it? This cannot be undone", default=False):
        raise click.ClickException("Nothing was erased.")
    try:
        # Asked, the operator confirmed that list: a request arriving meanwhile stops the erasure.
        record = privacy.erase_patient(
            reference_or_email, user_id=None, door=privacy.COMMAND_LINE, shown=None if yes else references
        )
    except privacy.PatientRequestsChanged as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc} Run the command again to see the requests now.") from None
    except privacy.PatientNotFound as exc:  # erased meanwhile (an admin, or its deadline)
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    except privacy.ErasureFailed as exc:
        raise click.ClickException(
            f"{exc} Try again; if it fails again, the log names the requests."
        ) from None
    click.echo(f"Erased {len(record.references)} request(s); proof of erasure #{record.id}.")


LISTED = 50  # references shown per rule by `retention --list`


@privacy_cli.command("retention")
@click.option("--apply", "apply_now", is_flag=True, help="Run retention now, as beat's daily run does.")
@click.option(
    "--list",
    "list_references",
    is_flag=True,
    help=f"With the preview, the references of the requests each rule would act on (the first {LISTED}).",
)
def retention_command(apply_now: bool, list_references: bool) -> None:
    """Show what retention would do now, changing nothing; --apply runs it and shows what it did."""
    if apply_now and list_references:
        raise click.UsageError("--list goes with the preview; --apply shows what the run did.")
    rules = _rules_in_words(current_app.config)
    if apply_now:
        result = privacy.apply_retention()
        click.echo("Retention ran:")
        for name, (_, done) in rules.items():
            click.echo(f"  {done}: {getattr(result, name)}")
        if result.failed:
            click.echo(
                f"  requests that failed (logged by lead id; the next run tries again): {result.failed}"
            )
        if result.sign_in_records:
            click.echo(f"  failed sign-ins' records past their use deleted: {result.sign_in_records}")
        return
    preview = privacy.preview_retention(listed=LISTED if list_references else 0)
    click.echo("Retention now would act on (a preview: nothing was changed; --apply runs it):")
    for name, (would, _) in rules.items():
        count = preview.counts[name]
        click.echo(f"  {would}: {count}")
        most = privacy.EMAILS_PER_RUN if name == "email_bodies" else privacy.MOST_PER_RUN
        if count > most:
            click.echo(f"    a run does at most {most:,}; the next runs go on")
        references = preview.references.get(name)
        if references:
            click.echo(textwrap.indent(textwrap.fill(" ".join(references), width=96), "    "))
            if count > len(references):
                click.echo(f"    and {count - len(references)} more")


def _rules_in_words(config) -> dict[str, tuple[str, str]]:
    """Each rule in the order a run applies them: what the preview counts, and what the run did."""
    closed = config["RETENTION_CLOSED_MONTHS"]
    booked = closed + config["RETENTION_BOOKED_FOLLOW_UP_MONTHS"]
    erasures = f"erasure requests due ({config['ERASURE_DUE_DAYS']} days after the patient asked)"
    if config["ERASURE_AUTOMATIC_WHEN_DUE"]:
        erasures += ", each with the requests sent from its address before it"
    else:
        erasures += ", left to an admin (ERASURE_AUTOMATIC_WHEN_DUE is off)"
    return {
        "erasures": (erasures, "erasures carried out"),
        "email_bodies": (
            f"emails older than {config['RETENTION_EMAIL_BODY_DAYS']} days whose words are removed",
            "emails whose words were removed",
        ),
        "closed_leads": (
            f"closed, withdrawn and unroutable requests untouched for {closed} months (booked: {booked}), "
            "to anonymise",
            "ended requests anonymised",
        ),
        "stalled_leads": (
            f"open requests nobody acted on for {config['RETENTION_STALLED_MONTHS']} months, to close and "
            "anonymise",
            "open requests closed and anonymised",
        ),
        "spam_and_duplicates": (
            f"spam and duplicates untouched for {config['RETENTION_SPAM_DAYS']} days, to anonymise",
            "spam and duplicates anonymised",
        ),
    }
