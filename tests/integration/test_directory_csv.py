"""CSV import and export of the provider directory: all rows or none, problems by line number."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from config import BASE_DIR
from leads.directory import csv_io
from leads.directory.csv_io import ImportFailed, export_providers, import_providers
from leads.extensions import db
from leads.models import Provider
from tests.helpers import count_rows

# Imports lean on unique constraints, whose errors differ on PostgreSQL.
pytestmark = pytest.mark.pg

HEADER = (
    "name,city,region,notification_emails,languages,notification_language,weekly_capacity,"
    "status,paused_until,treatments,conditions\n"
)
AARHUS = (
    "Aarhus Spine Clinic,Aarhus,Midtjylland,intake@aarhus-spine.dk; Team@Aarhus-Spine.dk,"
    "da; en; DE,da,8,active,,"
    "neurorehabilitation-spinal-cord-injury:approved; stem-cell-spinal-cord-injury,"
    "spinal-cord-injury-complete; spinal-cord-injury-incomplete\n"
)
ODENSE = (
    "Odense Trial Unit,Odense,Syddanmark,trials@odense-unit.dk,en,en,3,,,"
    "ahsct-multiple-sclerosis:clinical_trial,multiple-sclerosis-relapsing\n"
)


def _provider(name) -> Provider:
    return db.session.scalar(sa.select(Provider).filter_by(name=name))


def _import(text: str) -> csv_io.ImportReport:
    report = import_providers(text.encode())
    db.session.commit()
    return report


def _failure(text) -> list[str]:
    with pytest.raises(ImportFailed) as failed:
        import_providers(text.encode() if isinstance(text, str) else text)
    db.session.rollback()
    return [str(error) for error in failed.value.errors]


def test_a_good_file_creates_every_provider_with_its_lists_and_evidence_statuses(app, taxonomy):
    report = _import(HEADER + AARHUS + ODENSE)
    assert (report.created, report.updated) == (2, 0)
    aarhus = _provider("Aarhus Spine Clinic")
    assert (aarhus.city, aarhus.region, aarhus.weekly_capacity) == ("Aarhus", "Midtjylland", 8)
    assert aarhus.notification_emails == ["intake@aarhus-spine.dk", "Team@aarhus-spine.dk"]
    assert aarhus.languages == ["da", "en", "de"]
    assert aarhus.notification_language == "da"
    offers = {pt.treatment.slug: pt.evidence_status for pt in aarhus.treatments}
    # Without a status, the treatment's own evidence status applies.
    assert offers == {
        "neurorehabilitation-spinal-cord-injury": "approved",
        "stem-cell-spinal-cord-injury": "clinical_trial",
    }
    assert sorted(c.slug for c in aarhus.conditions) == [
        "spinal-cord-injury-complete",
        "spinal-cord-injury-incomplete",
    ]
    assert aarhus.active and aarhus.paused_until is None and not aarhus.is_demo


def test_importing_again_updates_by_name_and_leaves_other_providers_alone(app, taxonomy):
    _import(HEADER + AARHUS + ODENSE)
    changed = AARHUS.replace(",da,8,", ",en,12,").replace("Aarhus Spine Clinic", "AARHUS SPINE CLINIC")
    report = _import(HEADER + changed)
    assert (report.created, report.updated) == (0, 1)
    assert count_rows(Provider) == 2
    renamed = _provider("AARHUS SPINE CLINIC")
    assert (renamed.weekly_capacity, renamed.notification_language) == (12, "en")
    assert _provider("Odense Trial Unit").weekly_capacity == 3


def test_a_file_with_one_bad_row_imports_nothing_and_names_the_line(app, taxonomy):
    bad = ODENSE.replace(",3,", ",lots,")
    problems = _failure(HEADER + AARHUS + bad + AARHUS.replace("Aarhus Spine", "Vejle Spine"))
    assert problems == [
        "line 3: weekly_capacity: Enter how many leads a week the provider takes, a whole number from 1 to "
        "1000 (to stop leads for a while, pause the provider)"
    ]
    assert count_rows(Provider) == 0


def test_unknown_treatment_slugs_are_named_with_their_line(app, taxonomy):
    row = ODENSE.replace(
        "ahsct-multiple-sclerosis:clinical_trial", "stem-cell-magic; ahsct-multiple-sclerosis"
    )
    [problem] = _failure(HEADER + AARHUS + row)
    assert problem.startswith("line 3: treatments: Unknown treatment 'stem-cell-magic'; known treatments: ")
    assert "ahsct-multiple-sclerosis" in problem
    assert count_rows(Provider) == 0


def test_every_problem_in_the_file_is_reported_at_once(app, taxonomy):
    rows = [
        "Nameless,Vejle,Atlantis,not-an-address,xx,fr,0,sleeping,,stem-cell-als:miracle,als\n",
        ",Vejle,Syddanmark,a@b.dk,da,da,2,,,hsct-blood-cancer,als\n",
    ]
    problems = _failure(HEADER + AARHUS + "".join(rows))
    assert [p.split(":", 2)[:2] for p in problems] == [
        ["line 3", " region"],
        ["line 3", " notification_emails"],
        ["line 3", " languages"],
        ["line 3", " notification_language"],
        ["line 3", " weekly_capacity"],
        ["line 3", " treatments"],
        ["line 3", " status"],
        ["line 4", " name"],
        ["line 4", " conditions"],
    ]
    assert "'Atlantis' is not a Danish region" in problems[0]
    assert "als: not a condition of any treatment the provider offers" in problems[-1]


def test_line_numbers_count_physical_lines_even_with_quoted_line_breaks(app, taxonomy):
    multiline = AARHUS.replace("Aarhus Spine Clinic,Aarhus", '"Aarhus Spine\nClinic",Aarhus')
    problems = _failure(HEADER + "\n" + multiline + ODENSE.replace("Syddanmark", "Skåne"))
    assert problems[0].startswith("line 5: region:")


# The one rule of every typed text (leads.validators): C0, DEL and the C1 controls too.
@pytest.mark.parametrize("control", ["\x07", "\x00", "\x7f", "\x9b"])
def test_invisible_control_characters_in_a_name_are_refused(app, taxonomy, control):
    assert _failure(HEADER + ODENSE.replace("Odense Trial", f"Odense{control}Trial")) == [
        "line 2: name: Remove the invisible control characters"
    ]


def test_the_same_name_twice_in_one_file_is_refused(app, taxonomy):
    assert _failure(HEADER + AARHUS + AARHUS.replace("Clinic,", "clinic ,")) == [
        "line 3: name: 'Aarhus Spine clinic' is already on line 2"
    ]


def test_the_same_name_in_any_case_twice_in_one_file_is_refused_letters_beyond_a_to_z_too(app, taxonomy):
    straße = AARHUS.replace("Aarhus Spine Clinic", "Straße Ørsted Klinik")
    strasse = AARHUS.replace("Aarhus Spine Clinic", "STRASSE ØRSTED KLINIK")
    assert _failure(HEADER + straße + strasse) == [
        "line 3: name: 'STRASSE ØRSTED KLINIK' is already on line 2"
    ]


def test_a_known_name_in_another_case_updates_its_provider(app, taxonomy):
    _import(HEADER + AARHUS.replace("Aarhus Spine Clinic", "Øresund Klinik"))
    report = _import(HEADER + AARHUS.replace("Aarhus Spine Clinic", "ØRESUND KLINIK").replace(",8,", ",9,"))
    assert (report.created, report.updated) == (0, 1)
    assert db.session.scalars(sa.select(Provider.weekly_capacity)).all() == [9]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "line 1: the file is empty; the first line names the columns: name, city,"),
        (HEADER, "line 2: no providers in the file, only the header"),
        ("name;city;region\n", "line 1: missing columns: name, city, region, notification_emails,"),
        ("name;city;region\n", "(is the file separated by commas?)"),
        (HEADER.replace("languages,", "langs,"), "line 1: missing column: languages"),
        (
            HEADER.replace("languages,", "langs,").replace("city,", "town,"),
            "line 1: missing columns: city, languages",
        ),
        (HEADER.replace("\n", ",notes\n"), "line 1: unknown column: notes; the columns are:"),
        (
            HEADER.replace("\n", ",notes,remarks\n"),
            "line 1: unknown columns: notes, remarks; the columns are:",
        ),
        (HEADER.replace("city,", "city,city,"), "line 1: column named twice: city"),
        (
            HEADER.replace("city,", "city,city,").replace("region,", "region,region,"),
            "line 1: columns named twice: city, region",
        ),
        (HEADER + AARHUS.replace("\n", ",extra\n"), "line 2: has 12 values but the header names 11 columns"),
        (HEADER + 'x,"unterminated\n', "not a well-formed CSV line"),
    ],
)
def test_a_malformed_file_is_explained(app, taxonomy, content, expected):
    problems = _failure(content)
    assert any(expected in p for p in problems), problems
    assert count_rows(Provider) == 0


def test_a_file_that_is_not_utf8_names_the_first_bad_line(app, taxonomy):
    content = (HEADER + AARHUS).encode() + ODENSE.replace("Odense", "K\xf8ge").encode("latin-1")
    assert _failure(content) == ["line 3: not UTF-8 text; save the file as 'CSV UTF-8'"]


def test_a_spreadsheet_export_with_a_byte_order_mark_imports(app, taxonomy):
    assert import_providers(b"\xef\xbb\xbf" + (HEADER + ODENSE).encode()).created == 1


def test_a_region_can_be_written_without_danish_letters(app, taxonomy):
    _import(HEADER + ODENSE.replace("Syddanmark", "region sjaelland"))
    assert _provider("Odense Trial Unit").region == "Sjælland"


def test_status_and_pause_date_are_read_and_a_past_date_is_refused(app, taxonomy):
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        paused = ODENSE.replace(",3,,,", ",3,paused,2026-12-01,")
        stopped = AARHUS.replace(",active,,", ",Paused,,")
        _import(HEADER + paused + stopped)
        odense, aarhus = _provider("Odense Trial Unit"), _provider("Aarhus Spine Clinic")
        # Paused until the start of 1 December in Denmark.
        assert odense.active and odense.paused_until == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
        assert not aarhus.active and aarhus.paused_until is None
        problems = _failure(HEADER + ODENSE.replace(",3,,,", ",3,paused,2026-11-24,"))
        assert problems == [
            "line 2: paused_until: The date the provider gets leads again must be in the future"
        ]
        problems = _failure(HEADER + ODENSE.replace(",3,,,", ",3,paused,1/12/2026,"))
        assert problems == ["line 2: paused_until: '1/12/2026' is not a date; use the form 2026-12-31"]


def test_without_a_status_column_a_paused_provider_stays_paused(app, taxonomy):
    _import(HEADER + ODENSE)
    _provider("Odense Trial Unit").active = False
    db.session.commit()
    without_status = HEADER.replace("status,paused_until,", "") + ODENSE.replace(",3,,,", ",3,")
    _import(without_status)
    assert _provider("Odense Trial Unit").active is False


def test_export_then_import_gives_back_the_same_directory(app, taxonomy):
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        _import(HEADER + AARHUS + ODENSE.replace(",3,,,", ",3,paused,2026-12-01,"))
        first = export_providers()
        for provider in db.session.scalars(sa.select(Provider)):
            provider.weekly_capacity = 1
            provider.notification_emails = ["changed@example.dk"]
        db.session.commit()
        report = _import(first)
        assert (report.created, report.updated) == (0, 2)
        assert export_providers() == first
    assert first.splitlines()[0] == HEADER.strip()
    assert "2026-12-01" in first and ",paused," in first


def test_cells_a_spreadsheet_would_run_as_formulas_are_exported_quoted_and_read_back(app, taxonomy):
    _import(HEADER + ODENSE.replace("Odense Trial Unit", "=HYPERLINK(1)"))
    exported = export_providers()
    assert "\n'=HYPERLINK(1)," in exported
    db.session.delete(_provider("=HYPERLINK(1)"))
    db.session.commit()
    _import(exported)
    assert _provider("=HYPERLINK(1)") is not None


def test_the_demo_file_shipped_in_data_is_a_valid_example(app, taxonomy):
    report = import_providers((BASE_DIR / "data" / "demo_providers.csv").read_bytes())
    assert report.created == 5


def test_an_oversized_file_is_refused_before_parsing(app, taxonomy):
    assert _failure(b"x" * (csv_io.MAX_BYTES + 1)) == ["line 1: the file is larger than 2 MB"]


def test_a_pause_date_is_exported_in_danish_time(app, taxonomy):
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        _import(HEADER + ODENSE)
        _provider("Odense Trial Unit").paused_until = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
        db.session.commit()
        assert ",paused,2026-12-07," in export_providers()
    with time_machine.travel(datetime(2026, 12, 7, 0, 0, tzinfo=UTC) + timedelta(hours=1), tick=False):
        assert ",active,," in export_providers()
