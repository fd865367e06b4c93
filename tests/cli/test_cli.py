"""The CLI door, driven as a user would: arguments in, text or JSON out, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

from sagelab.cli import main
from sagelab.config import Settings


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_config_json(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "config")
    assert isinstance(data, dict)
    assert data["home"] == str(settings.home)
    assert data["lake"] == settings.lake


def test_db_upgrade(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "db", "upgrade")
    assert isinstance(data, dict) and data["head"]
    again = run_json(capsys, "db", "upgrade")
    assert isinstance(again, dict) and again["applied"] == []


def test_objects_round_trip(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(src, index=False)
    assert run(capsys, "lake", "mb", "raw")[0] == 0
    put = run_json(capsys, "lake", "put", str(src), "s3://raw/medical/cancer.csv")
    assert isinstance(put, dict) and put["Size"] == src.stat().st_size
    listing = run_json(capsys, "lake", "ls", "s3://raw/")
    assert isinstance(listing, dict) and listing["CommonPrefixes"] == ["medical/"]
    dst = tmp_path / "back.csv"
    assert run(capsys, "lake", "get", "s3://raw/medical/cancer.csv", str(dst))[0] == 0
    assert dst.read_bytes() == src.read_bytes()
    assert run(capsys, "lake", "rm", "s3://raw/medical/cancer.csv")[0] == 0
    listing = run_json(
        capsys,
        "lake",
        "ls",
        "s3://raw/",
    )
    assert (
        isinstance(listing, dict) and listing["Contents"] == [] and listing["CommonPrefixes"] == []
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["lake", "put", "missing.csv", "s3://raw/x.csv"], "does not exist"),
        (["lake", "get", "s3://raw/../../etc/passwd", "-"], "'..'"),
        (["lake", "get", "s3://nobucket/x", "-"], "nobucket"),
        (["lake", "describe", "../etc.passwd"], "DATABASE.TABLE"),
        (["lake", "describe", "nyc.nothing"], "not in the catalog"),
        (["sql", "SELECT * FROM nyc.nothing"], "not in the catalog"),
        (["sql", "COPY (SELECT 1) TO 'x.csv'"], "COPY"),
        (["sql", "--out", "x.csv", "SELECT 1"], "--out and --format go together"),
        (["jobs", "describe", "no-such-job"], "no-such-job"),
    ],
)
def test_errors_are_one_clear_line(
    settings: Settings, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    run(capsys, "lake", "mb", "raw")
    code, _out, err = run(capsys, *args)
    assert code == 1
    assert "Traceback" not in err
    assert needle in " ".join(err.split()), err
    assert err.strip().startswith("Error:")


def test_usage_errors_exit_2(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lake", "ingest")
    assert code == 2
    assert "Missing" in err


def test_sql_json_and_ctas(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "lake", "mb", "warehouse")
    created = run_json(
        capsys,
        "sql",
        "CREATE TABLE demo.squares AS SELECT range AS n, range * range AS sq FROM range(10)",
    )
    assert isinstance(created, dict) and created["stats"]["created_table"] == "demo.squares"
    data = run_json(capsys, "sql", "SELECT sum(sq) AS total FROM demo.squares")
    assert isinstance(data, dict) and data["rows"] == [{"total": sum(i * i for i in range(10))}]
    tables = run_json(capsys, "lake", "tables")
    assert isinstance(tables, dict)
    assert [t["Name"] for t in tables["TableList"]] == ["squares"]
    described = run_json(capsys, "lake", "describe", "demo.squares")
    assert isinstance(described, dict)
    cols = described["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in cols] == ["n", "sq"]


def test_debug_shows_traceback(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "lake", "describe", "nyc.nothing")
    assert code == 1
    assert "Traceback" in err


def test_console_script_runs(settings: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sagelab", "config", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["home"] == str(settings.home)
