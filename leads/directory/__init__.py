"""The provider directory: admin pages, CSV import/export and the `flask providers` commands."""

from leads.directory.views import bp

__all__ = ["bp"]
