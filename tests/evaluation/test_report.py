"""The HTML report: one valid, self-contained page with every section, and the PNGs beside it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _evalcases import Case

from sagelab.evaluation import evaluate, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}


class _Page(HTMLParser):
    """Collects ids, images and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []
        self.errors: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "img":
            self.images.append(found)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.doctype.lower() == "doctype html"
    assert not page.errors, page.errors[:5]
    assert not page.stack, f"unclosed: {page.stack}"
    return page


def _check_images(page: _Page, files: Path, names: set[str]) -> None:
    for img in page.images:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
        assert img.get("alt")
    written = {p.stem for p in files.glob("*.png")}
    assert written == names
    for png in files.glob("*.png"):
        data = png.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_binary_report_has_every_section_and_plot(binary_case: Case, tmp_path: Path) -> None:
    ev = evaluate(
        "binary_classifier",
        binary_case.y_true,
        binary_case.prediction,
        threshold="optimal-f1",
        class_names=binary_case.class_names,
    )
    series: dict[str, Sequence[Sequence[float]]] = {
        "train:logloss": [(i, 0.7 / (i + 1)) for i in range(30)],
        "validation:logloss": [(i, 0.8 / (i + 1) + 0.004 * i) for i in range(30)],
        "validation:auc": [[i, 0.9 + 0.002 * i] for i in range(30)],  # lists, as JSON gives them
    }
    out = write_report(
        ev,
        tmp_path / "reports" / "eval.html",  # a missing folder is created
        feature_importance=binary_case.feature_importance,
        metric_series=series,
        title="Breast cancer <model>",
        metadata={"model": "logistic-regression", "data": "s3://bucket/test.csv", "job": {"id": 7}},
    )
    assert out == tmp_path / "reports" / "eval.html"
    page = _parse(out)
    html = out.read_text(encoding="utf-8")

    sections = {"header", "metrics", "confusion-matrix", "curves", "calibration"}
    sections |= {"threshold-sweep", "feature-importance", "learning-curves"}
    assert sections <= page.ids
    plots = {"confusion-matrix", "roc-curve", "pr-curve", "calibration", "score-distribution"}
    plots |= {"threshold-sweep", "feature-importance", "learning-curve-logloss"}
    plots |= {"learning-curve-auc"}
    assert {f"plot-{p}" for p in plots} <= page.ids
    assert len(page.images) == len(plots)
    _check_images(page, tmp_path / "reports" / "eval_files", plots)

    assert "Breast cancer &lt;model&gt;" in html  # user text is escaped
    assert "s3://bucket/test.csv" in html and "{&quot;id&quot;: 7}" in html
    assert "hugs the top-left corner" in html
    assert f"{ev.threshold:.4g}" in html and "maximises F1" in html
    assert "The counts and rates at 101 thresholds" in html
    assert str(tmp_path) not in html  # the page names its PNG folder relatively
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_multiclass_and_regression_reports(
    multiclass_case: Case, regression_case: Case, tmp_path: Path
) -> None:
    ev = evaluate(
        "multiclass_classifier",
        multiclass_case.y_true,
        multiclass_case.prediction,
        class_names=multiclass_case.class_names,
    )
    page = _parse(write_report(ev, tmp_path / "multi.html"))
    assert {"metrics", "confusion-matrix", "per-class", "plot-roc-curve"} <= page.ids
    assert "feature-importance" not in page.ids and "learning-curves" not in page.ids
    _check_images(page, tmp_path / "multi_files", {"confusion-matrix", "roc-curve"})

    ev = evaluate("regressor", regression_case.y_true, regression_case.prediction)
    out = write_report(ev, str(tmp_path / "reg.html"), feature_importance={}, metric_series={})
    page = _parse(out)
    plots = {"predicted-vs-actual", "residuals-vs-predicted", "residual-histogram"}
    assert {"metrics", "residuals", "feature-importance", "learning-curves"} <= page.ids
    assert {f"plot-{p}" for p in plots} <= page.ids
    _check_images(page, tmp_path / "reg_files", plots)
    html = out.read_text(encoding="utf-8")
    assert "reported no features" in html and "recorded no metric series" in html


def test_a_plot_the_data_cannot_support_is_explained_not_drawn(
    binary_case: Case, tmp_path: Path
) -> None:
    positives = binary_case.y_true == 1
    ev = evaluate(
        "binary_classifier", binary_case.y_true[positives], binary_case.prediction.values[positives]
    )
    out = write_report(ev, tmp_path / "one-class.html")
    page = _parse(out)
    html = out.read_text(encoding="utf-8")
    assert "Not drawn: y_true holds only class &#x27;1&#x27;" in html
    assert "notes" in page.ids  # why AUC is missing
    assert not (tmp_path / "one-class_files" / "roc-curve.png").exists()
    assert (tmp_path / "one-class_files" / "confusion-matrix.png").stat().st_size > 0


def test_rewriting_a_report_replaces_it(regression_case: Case, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    ev = evaluate("regressor", regression_case.y_true, regression_case.prediction)
    write_report(ev, target, title="second")
    assert "<title>second</title>" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r_files"]


def test_matplotlib_is_lazy_and_global_state_is_left_alone(tmp_path: Path) -> None:
    """Importing the stage loads neither matplotlib nor scikit-learn; a report uses no pyplot."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import sagelab.evaluation as evaluation
        assert "matplotlib" not in sys.modules, "matplotlib imported eagerly"
        assert "sklearn" not in sys.modules, "scikit-learn imported eagerly"
        ev = evaluation.evaluate("regressor", np.arange(50.0), np.arange(50.0) + 0.5)
        evaluation.write_report(ev, {str(tmp_path / "lazy.html")!r})
        import matplotlib
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        backend = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
        print(backend)
        """
    )
    env = {**os.environ, "MPLBACKEND": ""}
    env.pop("MPLBACKEND")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"  # the backend was never chosen for the user


@pytest.mark.parametrize("n", [20_000])
def test_a_large_regression_report_samples_its_scatter_plots(n: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=n)
    ev = evaluate("regressor", y, y + rng.normal(scale=0.1, size=n))
    out = write_report(ev, tmp_path / "big.html")
    assert f"a random 5000 of the {n} rows are drawn" in out.read_text(encoding="utf-8")
