"""`flask providers import FILE.csv` and `flask providers export [-o FILE]`."""

from pathlib import Path

import click
from flask.cli import AppGroup

from leads.directory import csv_io
from leads.extensions import db

providers_cli = AppGroup("providers", help="Import and export the provider directory as CSV.")


@providers_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
def import_command(file: Path, dry_run: bool) -> None:
    """Create or update providers (matched by name) from FILE; all rows or none."""
    try:
        report = csv_io.import_providers(file.read_bytes())
    except csv_io.ImportFailed as exc:
        db.session.rollback()
        for error in exc.errors:
            click.echo(f"{file.name}: {error}", err=True)
        raise click.ClickException(
            f"Nothing was imported: {len(exc.errors)} problem(s) in {file.name}. "
            "Fix them and run the import again."
        ) from None
    if dry_run:
        db.session.rollback()
        click.echo(
            f"{file.name} is valid: {report.created} new and {report.updated} updated providers "
            "(dry run, nothing saved)."
        )
        return
    db.session.commit()
    click.echo(
        f"Imported {report.total} providers from {file.name} "
        f"({report.created} new, {report.updated} updated)."
    )


@providers_cli.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
def export_command(output: Path | None) -> None:
    """Write every provider as CSV, in the format `flask providers import` reads."""
    text = csv_io.export_providers()
    db.session.rollback()
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {text.count(chr(10)) - 1} providers to {output}", err=True)
