"""The quote forms: the clinic's quote and booking confirmation on /p/<token>, the patient's
choice on /my-request/<token>. Field names are the public contract (README)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget, TextInput

from leads.i18n import page_language
from leads.quotes import rules
from leads.quotes.rules import QuoteInput
from leads.timeutil import utcnow
from leads.workdays import danish_date


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        # Unknown items get the quote rules' own message instead of WTForms' one.
        pass


class AmountField(IntegerField):
    """A whole amount typed the way the page's language writes numbers (`rules.parse_amount`);
    what is not one leaves no data, and the quote rules put their message on the field.

    A text box with a numeric keyboard, not a number box: a browser's number box refuses 20,000 or
    20 000, or reads 20.000 its own way, before the server sees what the clinic typed."""

    widget = TextInput()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("render_kw", {"inputmode": "numeric"})
        super().__init__(*args, **kwargs)

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = rules.parse_amount(valuelist[0], page_language())


class QuoteForm(FlaskForm):
    price_from = AmountField(
        _l("Price from"), description=_l("Whole amount, for example 20000"), validators=[Optional()]
    )
    price_to = AmountField(
        _l("Price to"),
        description=_l("Whole amount; the same as from for a fixed price"),
        validators=[Optional()],
    )
    currency = SelectField(
        _l("Currency"),
        choices=[SelectChoice(c, c) for c in rules.CURRENCIES],
        default="EUR",
        validate_choice=False,
    )
    includes = CheckboxesField(
        _l("The price includes"),
        choices=[SelectChoice(key, label) for key, label in rules.INCLUDES.items()],
        default=["treatment"],
    )
    earliest_start = DateField(_l("Earliest start"), description=_l("YYYY-MM-DD"), validators=[Optional()])
    valid_days = IntegerField(
        _l("Valid for (days)"),
        default=rules.DEFAULT_VALID_DAYS,
        description=_l("From today; 30 unless you change it"),
        validators=[Optional()],
    )
    needs_records = RadioField(
        _l("Does the quote depend on reviewing medical records first?"),
        choices=[SelectChoice("y", _l("Yes")), SelectChoice("n", _l("No"))],
        default="n",
        validate_choice=False,
    )
    message = TextAreaField(_l("Message to the patient (optional)"), validators=[Optional()])
    # The revision the page showed (0: none yet), so that a second tab or a double click cannot
    # send a revision of a quote the clinic has not seen (`service.send_quote`); a form sent
    # without it is not checked.
    revision = IntegerField(widget=HiddenInput(), validators=[Optional()])

    def to_input(self) -> QuoteInput:
        return QuoteInput(
            price_from=self.price_from.data,
            price_to=self.price_to.data,
            currency=self.currency.data,
            includes=list(self.includes.data or []),
            earliest_start=self.earliest_start.data,
            valid_days=self.valid_days.data,
            needs_records=self.needs_records.data == "y",
            message=self.message.data or "",
        )

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        # The quote rules decide; their messages replace WTForms' parse errors (a mistyped number).
        problems = rules.quote_problems(self.to_input(), today=danish_date(utcnow()))
        if self.needs_records.data not in ("y", "n"):
            problems["needs_records"] = _l("Answer yes or no")
        for field in self:
            if field.name != "csrf_token":
                field.errors = [problems[field.name]] if field.name in problems else []
        csrf = getattr(self, "csrf_token", None)
        return not problems and not (csrf is not None and csrf.errors)

    @classmethod
    def for_quote(cls, quote) -> "QuoteForm":
        """The form the clinic's page shows: blank for a first quote (on revision 0), else filled
        in with the quote's current revision, for the clinic to revise it."""
        if quote is None:
            return cls(formdata=None, revision=0)
        revision = quote.current
        return cls(
            formdata=None,
            price_from=revision.price_from,
            price_to=revision.price_to,
            currency=revision.currency,
            includes=revision.includes,
            earliest_start=revision.earliest_start,
            valid_days=revision.valid_days,
            needs_records="y" if revision.needs_records else "n",
            message=revision.message,
            revision=revision.number,
        )


class WithdrawQuoteForm(FlaskForm):
    """A button: the clinic withdraws its quote."""


class BookingForm(FlaskForm):
    treatment_date = DateField(
        _l("Treatment date"),
        description=_l("YYYY-MM-DD"),
        validators=[InputRequired(_l("Enter the treatment date as YYYY-MM-DD"))],
    )


class ChoiceForm(FlaskForm):
    """The confirmation step's button: the patient goes ahead with one clinic, with the revision
    of its quote that the step showed them (a later revision is refused, not chosen)."""

    revision = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class RenewalForm(FlaskForm):
    """A button beside an expired quote: the patient asks the clinic to renew it."""


class NoneSuitForm(FlaskForm):
    """ "None of these suit me": close the quotes and ask the coordinators for other clinics."""
