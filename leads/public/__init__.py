"""The public side: the patient quote form and its thank-you page."""

from flask import Blueprint
from limits import parse_many

from config import ConfigError

bp = Blueprint("public", __name__)


@bp.record_once
def _check_settings(state) -> None:
    """Refuse to start with a rate limit Flask-Limiter cannot read, naming the setting."""
    value = state.app.config["QUOTE_RATE_LIMIT"]
    try:
        parse_many(value)
    except ValueError as exc:
        raise ConfigError(
            f"QUOTE_RATE_LIMIT is not a rate limit such as '10 per minute;50 per hour': {value!r}"
        ) from exc
    for name in (
        "QUOTE_MIN_FILL_SECONDS",
        "QUOTE_FORM_MAX_AGE_SECONDS",
        "QUOTE_DUPLICATE_WINDOW_DAYS",
        "LEAD_SLA_HOURS",
    ):
        if state.app.config[name] < 0:
            raise ConfigError(f"{name} must not be negative")


from leads.public import views  # noqa: E402,F401  (routes register on import)
