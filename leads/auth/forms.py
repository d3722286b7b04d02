from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError


def _no_control_characters(form, field):
    """A NUL or other control character is never part of an address (PostgreSQL refuses NUL)."""
    if any(ord(character) < 32 or ord(character) == 127 for character in field.data or ""):
        raise ValidationError("Enter your email address")


class LoginForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[DataRequired("Enter your email address"), Length(max=254), _no_control_characters],
    )
    password = PasswordField("Password", validators=[DataRequired("Enter your password"), Length(max=200)])
