from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from leads.routing.responses import DECLINE_REASONS
from leads.validators import NoControlCharacters


class AcceptForm(FlaskForm):
    note = TextAreaField(
        _l("Note for the coordinators (optional)"),
        validators=[
            Optional(),
            Length(max=2000, message=_l("Keep the note under 2,000 characters")),
            NoControlCharacters(multiline=True),  # PostgreSQL refuses NUL in text
        ],
    )


class DeclineForm(FlaskForm):
    reason = RadioField(
        _l("Why are you declining?"),
        choices=[SelectChoice(value, label) for value, label in DECLINE_REASONS.items()],
        validators=[DataRequired(_l("Choose a reason for declining"))],
    )
    decline_note = TextAreaField(
        _l("Note for the coordinators (optional)"),
        validators=[
            Optional(),
            Length(max=2000, message=_l("Keep the note under 2,000 characters")),
            NoControlCharacters(multiline=True),  # PostgreSQL refuses NUL in text
        ],
    )
