from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from leads.validators import NoControlCharacters


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        validators=[
            DataRequired(_l("Enter your email address")),
            Length(max=254),
            # Never part of an address (PostgreSQL refuses NUL); the same generic message.
            NoControlCharacters(_l("Enter your email address")),
        ],
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password")), Length(max=200)]
    )
