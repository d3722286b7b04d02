from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError


def _no_control_characters(form, field):
    """A NUL or other control character is never part of an address (PostgreSQL refuses NUL)."""
    if any(ord(character) < 32 or ord(character) == 127 for character in field.data or ""):
        raise ValidationError(_l("Enter your email address"))


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        validators=[DataRequired(_l("Enter your email address")), Length(max=254), _no_control_characters],
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password")), Length(max=200)]
    )
