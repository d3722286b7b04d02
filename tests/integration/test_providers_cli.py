"""`flask providers import FILE.csv` and `flask providers export`: the public command line."""

import sqlalchemy as sa

from config import BASE_DIR
from leads.extensions import db
from leads.models import Provider
from tests.helpers import count_rows
from tests.integration.test_directory_csv import AARHUS, HEADER, ODENSE


def _names():
    names = sorted(db.session.scalars(sa.select(Provider.name)))
    db.session.rollback()
    return names


def test_import_of_a_good_file_says_what_it_did(runner, taxonomy, tmp_path):
    path = tmp_path / "providers.csv"
    path.write_text(HEADER + AARHUS + ODENSE, encoding="utf-8")
    result = runner.invoke(args=["providers", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 2 providers from providers.csv (2 new, 0 updated).\n"
    assert _names() == ["Aarhus Spine Clinic", "Odense Trial Unit"]


def test_import_of_a_bad_file_lists_each_line_exits_non_zero_and_imports_nothing(runner, taxonomy, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + AARHUS + ODENSE.replace("trials@odense-unit.dk", "trials-at-odense"), encoding="utf-8"
    )
    result = runner.invoke(args=["providers", "import", str(path)])
    assert result.exit_code == 1
    assert (
        "bad.csv: line 3: notification_emails: Not a valid email address: trials-at-odense" in result.stderr
    )
    assert "Error: Nothing was imported: 1 problem(s) in bad.csv." in result.stderr
    assert result.stdout == ""
    assert _names() == []


def test_import_of_a_missing_file_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(args=["providers", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_dry_run_checks_the_file_and_saves_nothing(runner, taxonomy, tmp_path):
    path = tmp_path / "providers.csv"
    path.write_text(HEADER + AARHUS, encoding="utf-8")
    result = runner.invoke(args=["providers", "import", "--dry-run", str(path)])
    assert result.exit_code == 0
    assert "providers.csv is valid: 1 new and 0 updated providers (dry run, nothing saved)." in result.stdout
    assert count_rows(Provider) == 0


def test_export_writes_the_csv_to_standard_output_or_a_file_that_imports_back(runner, taxonomy, tmp_path):
    demo = BASE_DIR / "data" / "demo_providers.csv"
    assert runner.invoke(args=["providers", "import", str(demo)]).exit_code == 0
    shown = runner.invoke(args=["providers", "export"])
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("name,city,region,notification_emails,languages,")
    assert len(lines) == 6 and any(
        line.startswith("Oeresund Regenerative Research Unit (demo),") for line in lines
    )
    target = tmp_path / "out.csv"
    written = runner.invoke(args=["providers", "export", "-o", str(target)])
    assert written.exit_code == 0 and "Wrote 5 providers" in written.stderr
    assert target.read_text(encoding="utf-8") == shown.stdout
    again = runner.invoke(args=["providers", "import", str(target)])
    assert again.stdout == "Imported 5 providers from out.csv (0 new, 5 updated).\n"


def test_seed_demo_loads_the_demo_providers_through_the_importer(runner, app):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "5 demo providers" in result.stdout
    providers = db.session.scalars(sa.select(Provider)).all()
    assert len(providers) == 5 and all(p.is_demo and p.name.endswith("(demo)") for p in providers)
    db.session.rollback()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert count_rows(Provider) == 5
