"""Command-line tools: `flask seed-demo`, `flask users create`, `flask send-test-email`."""

import sys

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app
from flask.cli import AppGroup

from leads.auth import accounts
from leads.dev import seed
from leads.directory.cli import providers_cli
from leads.extensions import db
from leads.messaging.email import queue_email
from leads.models import Role
from leads.patients.cli import privacy_cli
from leads.staff import user_admin
from leads.staff.stats_cli import stats_cli
from leads.timeutil import utcnow

users_cli = AppGroup("users", help="Manage staff accounts.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(email: str, role: str, password_stdin: bool) -> None:
    """Create a staff user; the password is prompted for, or read from standard input. It is a
    temporary one: the user must choose their own at their first sign-in."""
    try:
        user = accounts.create_user(email, _read_password(password_stdin), role, temporary=True)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role} {user.email}; they choose their own password at their first sign-in")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("deactivate")
@click.argument("email")
def deactivate_user_command(email: str) -> None:
    """Deactivate a staff user: they are signed out and cannot sign in again."""
    try:
        user = user_admin.set_active(user_admin.find_user(email), False)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deactivated {user.email}")


@users_cli.command("activate")
@click.argument("email")
def activate_user_command(email: str) -> None:
    """Reactivate a deactivated staff user (and lift any lockout)."""
    try:
        user = user_admin.set_active(user_admin.find_user(email), True)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Activated {user.email}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password_command(email: str, password_stdin: bool) -> None:
    """Set a staff user's password (prompted, or from standard input) and lift any lockout; the
    user must replace it with their own at their next sign-in."""
    try:
        user = user_admin.find_user(email)
        user_admin.reset_password(user, _read_password(password_stdin))
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Password changed for {user.email}; they choose their own at their next sign-in")


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the taxonomy, the fictional demo providers and the demo staff accounts."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException(
            "seed-demo creates accounts with known passwords; it does not run in production"
        )
    seed.load_taxonomy()
    count = seed.load_demo_providers()
    lines = seed.ensure_demo_staff()
    db.session.commit()
    click.echo(f"Taxonomy loaded; {count} demo providers (fictional, marked 'demo').")
    for line in lines:
        click.echo(line)


@click.command("send-test-email")
@click.argument("address")
def send_test_email_command(address: str) -> None:
    """Queue a test email; a worker sends it through the configured SMTP server."""
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.ClickException(f"Not a valid email address: {exc}") from None
    sent_at = utcnow()
    email_id = queue_email(
        template="test_message",
        to=address,
        idempotency_key=f"test:{address}:{sent_at.isoformat()}",
        sent_at=sent_at,
    )
    db.session.commit()
    click.echo(f"Queued test email {email_id} to {address}")


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(send_test_email_command)
    app.cli.add_command(providers_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(stats_cli)
