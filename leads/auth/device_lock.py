"""A lockout of one device cookie after too many failed sign-ins made with it (OWASP's device
cookies), so that a cookie copied off the owner's browser brings no more guesses than no cookie.

A device cookie (leads.auth.devices) spares its browser the account's ceiling (leads.auth.ceiling).
Its holder could then guess from many addresses, each with the per-address throttle's allowance.
So the failures made with one cookie are counted, from every address together, in fixed windows
of time (the ceiling's); once a window holds the limit, that cookie is not trusted until the
window ends: the ceiling applies to it like to any new browser. The account and its other
browsers are untouched. A cookie is named by a hash of its nonce: no account, no address.
"""

import logging
from datetime import datetime, timedelta

from leads.auth import windows
from leads.models.staff import LoginDeviceLock

log = logging.getLogger(__name__)


def is_locked(device: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Whether the device cookie `device` (devices.device_key) is refused trust now."""
    return windows.failures(LoginDeviceLock.device, device, now, window) >= max_failures


def record_failure(device: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Count one failure made with `device` in the window of `now`; True for the one call, of
    however many run at once, whose failure locks it."""
    return windows.count_failure(LoginDeviceLock.device, device, now, window) == max_failures


def forget_ended(now: datetime, window: timedelta) -> int:
    """Delete the counts of windows that have ended (the daily retention run); how many."""
    return windows.forget_ended(LoginDeviceLock, now, window)


def log_locked(user_id: int, now: datetime, window: timedelta) -> None:
    """Say in the application log, with the account's id alone, that one of its device cookies
    is not trusted for the rest of the window."""
    log.warning(
        "a device cookie of user %s is locked after too many failed sign-ins with it: untrusted until %s",
        user_id,
        (windows.window_start(now, window) + window).isoformat(),
    )
