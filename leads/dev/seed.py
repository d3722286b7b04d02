"""Load the treatment taxonomy and the demo directory from data files (idempotent)."""

import json
from pathlib import Path

import sqlalchemy as sa

from config import BASE_DIR
from leads.auth import accounts
from leads.directory.csv_io import import_providers
from leads.extensions import db
from leads.models import Condition, EvidenceStatus, Role, Treatment, User

DATA_DIR = BASE_DIR / "data"
DEMO_STAFF = (
    ("Demo coordinator", "coordinator@demo.example", "demo-coordinator-pass", Role.COORDINATOR),
    ("Demo admin", "admin@demo.example", "demo-admin-password", Role.ADMIN),
)


def load_taxonomy(path: Path = DATA_DIR / "taxonomy.json") -> None:
    """Create or update treatments and conditions by slug."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    conditions = {}
    for order, item in enumerate(data["conditions"]):
        condition = _by_slug(Condition, item["slug"])
        condition.name, condition.category, condition.sort_order = item["name"], item["category"], order
        conditions[item["slug"]] = condition
    for order, item in enumerate(data["treatments"]):
        status = EvidenceStatus(item["evidence_status"])
        treatment = _by_slug(Treatment, item["slug"])
        treatment.name = item["name"]
        treatment.description = item.get("description", "")
        treatment.evidence_status = status.value
        treatment.requires_review = item.get("requires_review", status == EvidenceStatus.INVESTIGATIONAL)
        treatment.sort_order = order
        treatment.conditions = [conditions[slug] for slug in item["conditions"]]
    db.session.flush()


def _by_slug(model, slug: str):
    row = db.session.scalar(sa.select(model).filter_by(slug=slug))
    if row is None:
        row = model(slug=slug)
        db.session.add(row)
    return row


def load_demo_providers(path: Path = DATA_DIR / "demo_providers.csv") -> int:
    """Create or update the fictional demo providers by name, through the CSV importer; return how many.

    The file has no status column, so a demo provider an admin paused stays paused."""
    return import_providers(Path(path).read_bytes(), is_demo=True).total


def ensure_demo_staff() -> list[str]:
    """Create the demo staff accounts if missing; return one credentials line for each."""
    lines = []
    for label, email, password, role in DEMO_STAFF:
        user = db.session.scalar(sa.select(User).filter_by(email=email))
        if user is None:
            accounts.create_user(email, password, role)
        else:
            user.password_hash, user.role, user.active = accounts.hash_password(password), role, True
        lines.append(f"{label}: {email} / {password}")
    return lines
