"""The provider directory as a CSV file: import (all rows or none) and export in the same format.

Columns (header row required, any order; `status` and `paused_until` optional):
name, city, region, notification_emails, languages, notification_language, weekly_capacity,
status, paused_until, treatments, conditions. Lists are separated by semicolons; a treatment is
`slug` or `slug:evidence_status`.

Problems are reported by line in the reader's language (the import page's); the command line reads
them in English.
"""

import csv
import io
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext

from leads.directory.service import find_by_name, is_paused, list_providers, save_provider
from leads.directory.validation import (
    ACTIVE,
    PAUSED,
    InvalidFields,
    ProviderData,
    SlugIndex,
    clean_provider,
)
from leads.models.catalog import provider_name_key
from leads.timeutil import utcnow
from leads.workdays import DANISH_TIME

COLUMNS = (
    "name",
    "city",
    "region",
    "notification_emails",
    "languages",
    "notification_language",
    "weekly_capacity",
    "status",
    "paused_until",
    "treatments",
    "conditions",
)
OPTIONAL_COLUMNS = ("status", "paused_until")
LIST_SEPARATOR = ";"
MAX_BYTES = 2 * 1024 * 1024
# Spreadsheet programs run cells starting with these as formulas; exported cells get a quote first.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportFailed(ValueError):
    """The file was not imported; every problem found, by line number."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int

    @property
    def total(self) -> int:
        return self.created + self.updated


def import_providers(content: bytes | str, *, is_demo: bool = False) -> ImportReport:
    """Validate every row, then create or update providers by name in the caller's transaction.

    ImportFailed (listing each bad line) before anything is written; providers not in the file
    are left as they are. The caller commits.
    """
    rows = _parse(content)
    taxonomy = SlugIndex.load()
    errors: list[LineError] = []
    cleaned = []
    seen: dict[str, int] = {}
    for line, data in rows:
        key = provider_name_key(data.name)
        if key and key in seen:
            message = _("'%(name)s' is already on line %(line)s", name=data.name.strip(), line=seen[key])
            errors.append(_column_error(line, "name", message))
            continue
        seen[key] = line
        try:
            cleaned.append((line, clean_provider(data, taxonomy)))
        except InvalidFields as exc:
            errors.extend(_field_errors(line, exc))
    if errors:
        raise ImportFailed(errors)
    created = updated = 0
    for line, clean in cleaned:
        provider = find_by_name(clean.name)
        try:
            saved = save_provider(provider, clean)
        except InvalidFields as exc:  # another admin saved the name since find_by_name looked
            raise ImportFailed(_field_errors(line, exc)) from None
        if provider is None:
            saved.is_demo = is_demo
            created += 1
        else:
            saved.is_demo = saved.is_demo or is_demo
            updated += 1
    return ImportReport(created=created, updated=updated)


def _field_errors(line: int, invalid: InvalidFields) -> list[LineError]:
    return [_column_error(line, column, message) for column, message in invalid.errors.items()]


def _column_error(line: int, column: str, message: str) -> LineError:
    """A problem with one cell, after the name of its column (as the file's header spells it)."""
    return LineError(line, f"{column}: {message}")


def _parse(content: bytes | str) -> list[tuple[int, ProviderData]]:
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            message = _("the file is larger than %(megabytes)s MB", megabytes=MAX_BYTES // 1024 // 1024)
            raise ImportFailed([LineError(1, message)])
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            raise ImportFailed([LineError(line, _("not UTF-8 text; save the file as 'CSV UTF-8'"))]) from None
    else:
        text = content.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            message = _(
                "the file is empty; the first line names the columns: %(columns)s", columns=", ".join(COLUMNS)
            )
            raise ImportFailed([LineError(1, message)])
        columns = [cell.strip().lower() for cell in header]
        _check_header(columns)
        rows: list[tuple[int, ProviderData]] = []
        errors: list[LineError] = []
        line = reader.line_num + 1
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(columns):
                message = _(
                    "has %(values)s values but the header names %(columns)s columns",
                    values=len(record),
                    columns=len(columns),
                )
                errors.append(LineError(start, message))
                continue
            rows.append((start, _row_data(dict(zip(columns, record, strict=True)))))
    except csv.Error as exc:
        message = _("not a well-formed CSV line (%(problem)s)", problem=exc)
        raise ImportFailed([LineError(reader.line_num, message)]) from None
    if errors:
        raise ImportFailed(errors)
    if not rows:
        raise ImportFailed([LineError(2, _("no providers in the file, only the header"))])
    return rows


def _check_header(columns: list[str]) -> None:
    problems = []
    missing = [c for c in COLUMNS if c not in columns and c not in OPTIONAL_COLUMNS]
    unknown = [c for c in columns if c not in COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if missing and len(columns) == 1:
        problems.append(
            ngettext(
                "missing column: %(columns)s (is the file separated by commas?)",
                "missing columns: %(columns)s (is the file separated by commas?)",
                len(missing),
                columns=", ".join(missing),
            )
        )
    elif missing:
        problems.append(
            ngettext(
                "missing column: %(columns)s",
                "missing columns: %(columns)s",
                len(missing),
                columns=", ".join(missing),
            )
        )
    if unknown:
        problems.append(
            ngettext(
                "unknown column: %(unknown)s; the columns are: %(columns)s",
                "unknown columns: %(unknown)s; the columns are: %(columns)s",
                len(unknown),
                unknown=", ".join(unknown),
                columns=", ".join(COLUMNS),
            )
        )
    if duplicated:
        problems.append(
            ngettext(
                "column named twice: %(columns)s",
                "columns named twice: %(columns)s",
                len(duplicated),
                columns=", ".join(duplicated),
            )
        )
    if problems:
        raise ImportFailed([LineError(1, problem) for problem in problems])


def _split(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(LIST_SEPARATOR) if part.strip()]


def _row_data(row: dict[str, str]) -> ProviderData:
    row = {key: _unquote_formula(value) for key, value in row.items()}
    treatments: dict[str, str] = {}
    for item in _split(row["treatments"]):
        slug, _, status = item.partition(":")
        treatments[slug.strip()] = status.strip()
    return ProviderData(
        name=row["name"],
        city=row["city"],
        region=row["region"],
        notification_emails=_split(row["notification_emails"]),
        languages=_split(row["languages"]),
        notification_language=row["notification_language"],
        weekly_capacity=row["weekly_capacity"],
        treatments=treatments,
        conditions=_split(row["conditions"]),
        status=row.get("status"),
        paused_until=row.get("paused_until", ""),
    )


def export_providers() -> str:
    """Every provider as CSV text, in the format import_providers reads."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    now = utcnow()
    for provider in list_providers():
        paused_until = ""
        if provider.active and is_paused(provider, now):
            paused_until = provider.paused_until.astimezone(DANISH_TIME).date().isoformat()
        treatments = sorted(f"{pt.treatment.slug}:{pt.evidence_status}" for pt in provider.treatments)
        row = [
            provider.name,
            provider.city,
            provider.region,
            f"{LIST_SEPARATOR} ".join(provider.notification_emails or []),
            f"{LIST_SEPARATOR} ".join(provider.languages or []),
            provider.notification_language,
            str(provider.weekly_capacity),
            PAUSED if is_paused(provider, now) else ACTIVE,
            paused_until,
            f"{LIST_SEPARATOR} ".join(treatments),
            f"{LIST_SEPARATOR} ".join(sorted(c.slug for c in provider.conditions)),
        ]
        writer.writerow([_quote_formula(cell) for cell in row])
    return buffer.getvalue()


def _quote_formula(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _unquote_formula(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell
