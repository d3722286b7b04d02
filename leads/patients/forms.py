from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class WithdrawForm(FlaskForm):
    confirm_withdraw = BooleanField(
        "I want to withdraw my consent. Stop sharing my request with clinics.",
        validators=[DataRequired("Tick the box to confirm that you want to withdraw")],
    )


class ErasureForm(FlaskForm):
    confirm_erasure = BooleanField(
        "I want my personal data to be erased.",
        validators=[DataRequired("Tick the box to confirm that you want your data erased")],
    )
