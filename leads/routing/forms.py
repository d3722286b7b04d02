from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from leads.routing.responses import DECLINE_REASONS


class AcceptForm(FlaskForm):
    price_range = StringField(
        "First price range (optional)",
        description="For example: EUR 20,000 to 30,000, before assessment",
        validators=[Optional(), Length(max=100, message="Keep the price range under 100 characters")],
    )
    note = TextAreaField(
        "Note for the coordinators (optional)",
        validators=[Optional(), Length(max=2000, message="Keep the note under 2,000 characters")],
    )


class DeclineForm(FlaskForm):
    reason = RadioField(
        "Why are you declining?",
        choices=[SelectChoice(value, label) for value, label in DECLINE_REASONS.items()],
        validators=[DataRequired("Choose a reason for declining")],
    )
    decline_note = TextAreaField(
        "Note for the coordinators (optional)",
        validators=[Optional(), Length(max=2000, message="Keep the note under 2,000 characters")],
    )
