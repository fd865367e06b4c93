"""The CLI door: ``sagelab profile`` and ``sagelab explore clusters|project``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_wine

from sagelab.cli import main
from sagelab.config import Settings


@pytest.fixture
def wine_csv(tmp_path: Path) -> str:
    path = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # Rich wraps long error lines


def test_profile_json_report_and_lake(
    settings: Settings, wine_csv: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out" / "wine.html"
    code, out, err = run(
        capsys, "profile", wine_csv, "--target", "target", "--report", str(report), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["rows"] == 178 and data["target"]["name"] == "target"
    assert data["report"] == str(report) and report.is_file()
    assert data["stored"] == "s3://artifacts/profiles/wine/"
    code, out, err = run(capsys, "lake", "ls", "s3://artifacts/profiles/wine/", "--json")
    assert code == 0 and "profile.json" in out and "report.html" in out


def test_profile_text_output(
    settings: Settings, wine_csv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "profile", wine_csv, "--target", "target", "--no-store")
    assert code == 0, err
    assert "178 rows" in out and "flavanoids" in out and "association with 'target'" in out
    assert "warning" in out


def test_profile_errors_are_one_line(
    settings: Settings, wine_csv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "profile", wine_csv, "--target", "targte", "--no-store")
    assert code == 1 and "Did you mean 'target'" in err and "Traceback" not in err
    code, _, err = run(capsys, "profile", "/no/such/file.csv", "--no-store")
    assert code == 1 and "Error" in err
    code, _, err = run(
        capsys, "profile", wine_csv, "--report", str(Path(wine_csv).parent), "--no-store"
    )
    assert code == 1 and "is a folder" in err


def test_explore_clusters_and_project(
    settings: Settings, wine_csv: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = "alcohol,flavanoids,color_intensity,proline,hue"
    code, out, err = run(
        capsys,
        "explore",
        "clusters",
        wine_csv,
        "--columns",
        columns,
        "--k-max",
        "5",
        "--report",
        str(tmp_path / "c.html"),
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [row["k"] for row in data["k"]] == [2, 3, 4, 5] and data["best_k"] in (2, 3, 4, 5)
    assert (tmp_path / "c_files" / "elbow.png").is_file()
    code, out, err = run(capsys, "explore", "clusters", wine_csv, "--columns", columns, "--k", "3")
    assert code == 0 and "3 clusters" in out
    code, out, err = run(
        capsys, "explore", "project", wine_csv, "--method", "pca", "--target", "target", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["method"] == "pca"
    code, out, err = run(capsys, "explore", "project", wine_csv, "--target", "target")
    assert code == 0 and "PCA of 13 standardized columns" in out
    code, _, err = run(capsys, "explore", "project", wine_csv, "--method", "umap")
    assert code == 1 and "not one of pca, tsne" in err
    code, _, err = run(capsys, "explore", "clusters", wine_csv, "--k-min", "5", "--k-max", "3")
    assert code == 1 and "--k-max" in err
