from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class WithdrawForm(FlaskForm):
    confirm_withdraw = BooleanField(
        _l("I want to withdraw my consent. Stop sharing my request with clinics."),
        validators=[DataRequired(_l("Tick the box to confirm that you want to withdraw"))],
    )


class ErasureForm(FlaskForm):
    confirm_erasure = BooleanField(
        _l("I want my personal data to be erased."),
        validators=[DataRequired(_l("Tick the box to confirm that you want your data erased"))],
    )
