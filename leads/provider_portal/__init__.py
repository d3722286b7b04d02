"""The provider's side: a signed link from the notification email, no account needed."""

from leads.provider_portal.views import bp

__all__ = ["bp"]
