"""`flask privacy export REFERENCE_OR_EMAIL [-o FILE]` and `flask privacy erase REFERENCE_OR_EMAIL`."""

import json
import sys

import click
from flask.cli import AppGroup

from leads.extensions import db
from leads.patients import privacy

privacy_cli = AppGroup("privacy", help="Answer a patient's access and erasure requests.")


@privacy_cli.command("export")
@click.argument("reference_or_email")
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), help="Write here (default: standard output)."
)
def export_command(reference_or_email: str, output) -> None:
    """Everything held about the patient, as JSON (every lead linked by email, duplicate or phone)."""
    try:
        document = privacy.export_patient(reference_or_email, user_id=None)
    except privacy.PatientNotFound as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    json.dump(document, output or sys.stdout, ensure_ascii=False, indent=2)
    (output or sys.stdout).write("\n")
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
    click.echo(f"Erased {len(record.references)} request(s); proof of erasure #{record.id}.")
