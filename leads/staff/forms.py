"""Forms of the staff dashboard. Queue filters and the stats period are GET forms (no CSRF:
they change nothing and must be bookmarkable); every other form posts with a CSRF token."""

import zoneinfo

import pycountry
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional, ValidationError

from leads.auth.accounts import MIN_PASSWORD_LENGTH
from leads.models import Role
from leads.workflow import LeadStatus

DATE_MESSAGE = "Enter the date as YYYY-MM-DD, for example 2025-03-31"
STATUS_LABELS = {status.value: status.value.replace("_", " ").capitalize() for status in LeadStatus}


def country_choices() -> list[tuple[str, str]]:
    countries = sorted(pycountry.countries, key=lambda c: c.name)
    return [("", "Any country")] + [(c.alpha_2, f"{c.name} ({c.alpha_2})") for c in countries]


class GetForm(FlaskForm):
    """Reads request.args, carries no CSRF token: a filter is a URL people share."""

    class Meta:
        csrf = False


class QueueFilterForm(GetForm):
    q = StringField(
        "Search", validators=[Optional(), Length(max=200, message="Search is at most 200 characters")]
    )
    status = SelectField(
        "Status", choices=[], default="", invalid_choice_message="Choose a status from the list"
    )
    treatment = SelectField(
        "Treatment", choices=[], default="", invalid_choice_message="Choose a treatment from the list"
    )
    condition = SelectField(
        "Condition", choices=[], default="", invalid_choice_message="Choose a condition from the list"
    )
    provider = SelectField(
        "Provider", choices=[], default="", invalid_choice_message="Choose a provider from the list"
    )
    country = SelectField(
        "Country", choices=[], default="", invalid_choice_message="Choose a country from the list"
    )
    source = StringField("Source (utm_source)", validators=[Optional(), Length(max=100)])
    assigned = SelectField(
        "Assigned to", choices=[], default="", invalid_choice_message="Choose a coordinator from the list"
    )
    created_from = DateField("Received from", validators=[Optional()], invalid_value_message=DATE_MESSAGE)
    created_to = DateField("Received to", validators=[Optional()], invalid_value_message=DATE_MESSAGE)
    overdue = BooleanField("Only SLA overdue")
    erasure = BooleanField("Only erasure requests to carry out")

    def validate_created_to(self, field):
        if field.data and self.created_from.data and field.data < self.created_from.data:
            raise ValidationError("The end date must be on or after the start date")


class StatsPeriodForm(GetForm):
    start = DateField("From", validators=[Optional()], invalid_value_message=DATE_MESSAGE)
    end = DateField("To", validators=[Optional()], invalid_value_message=DATE_MESSAGE)

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date must be on or after the start date")


class StatusForm(FlaskForm):
    status = SelectField("New status", choices=[], default="", validate_choice=False)
    current_status = HiddenField()
    note = TextAreaField("Note (optional)", validators=[Optional(), Length(max=2000)])

    def validate_status(self, field):
        if field.data not in STATUS_LABELS:
            raise ValidationError("Choose a status from the list")


class NoteForm(FlaskForm):
    note = TextAreaField(
        "Add a note",
        validators=[DataRequired("Write the note before saving it"), Length(max=5000)],
    )


class AssignForm(FlaskForm):
    assignee = SelectField(
        "Coordinator", choices=[], invalid_choice_message="Choose a coordinator from the list"
    )


class DuplicateForm(FlaskForm):
    original_reference = StringField(
        "Reference of the earlier request",
        validators=[DataRequired("Enter the reference of the earlier request, for example Q-7K3M9P")],
    )
    note = TextAreaField("Note (optional)", validators=[Optional(), Length(max=2000)])


class PatientExportForm(FlaskForm):
    """Download everything held about the patient (CSRF only)."""


class ErasureForm(FlaskForm):
    confirm = BooleanField(
        "I have checked that this is the patient's own request, and understand it cannot be undone",
        validators=[DataRequired("Tick the box to confirm the erasure")],
    )


class SpamForm(FlaskForm):
    note = TextAreaField("Why is this spam? (optional)", validators=[Optional(), Length(max=2000)])


class RerouteForm(FlaskForm):
    reason = TextAreaField(
        "Why re-route?",
        validators=[DataRequired("Say why the lead needs other providers"), Length(max=500)],
    )


class ApproveRoutingForm(FlaskForm):
    pass


class ResendForm(FlaskForm):
    pass


class ExportForm(FlaskForm):
    include_details = BooleanField("Include free-text medical details")


_password_length = Length(
    min=MIN_PASSWORD_LENGTH,
    max=200,
    message=f"The password must have at least {MIN_PASSWORD_LENGTH} characters",
)


class NewUserForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired("Enter an email address"), Length(max=254)])
    # Least privilege first: a new account is a coordinator unless an admin is chosen.
    role = SelectField(
        "Role",
        choices=[(Role.COORDINATOR.value, "Coordinator"), (Role.ADMIN.value, "Admin")],
        default=Role.COORDINATOR.value,
        invalid_choice_message="Choose admin or coordinator",
    )
    password = PasswordField(
        "Temporary password", validators=[InputRequired("Enter a temporary password"), _password_length]
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New temporary password", validators=[InputRequired("Enter the new password"), _password_length]
    )


class UserActiveForm(FlaskForm):
    pass


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone by its name (Europe/Copenhagen), sorted; the old aliases left out."""
    zones = sorted(
        z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))
    )
    return [("UTC", "UTC"), *((zone, zone.replace("_", " ")) for zone in zones)]


class AccountSettingsForm(FlaskForm):
    time_zone = SelectField(
        "Time zone for dates and times",
        choices=time_zone_choices,
        validate_choice=False,
        validators=[DataRequired("Choose a time zone")],
    )

    def validate_time_zone(self, field) -> None:
        if field.data not in dict(time_zone_choices()):
            raise ValidationError("Choose a time zone from the list, such as Europe/Copenhagen")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[InputRequired("Enter your current password"), Length(max=200)]
    )
    new_password = PasswordField(
        "New password", validators=[InputRequired("Enter a new password"), _password_length]
    )
    confirm_password = PasswordField(
        "New password again",
        validators=[
            InputRequired("Enter the new password again"),
            EqualTo("new_password", message="The two new passwords are not the same"),
        ],
    )
