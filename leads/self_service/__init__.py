"""The patient's own page, reached through the signed link in their confirmation email."""

from leads.self_service.views import bp

__all__ = ["bp"]
