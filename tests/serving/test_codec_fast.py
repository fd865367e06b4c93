"""The fast paths of the codec and the model: the codec's one-line CSV reader, its
one-value CSV writer and its writer of many values (through orjson), and the XGBoost
model's direct call of its C prediction function.

Each must answer exactly as the general path does, on real data and on bad input: the
same rows (bit for bit), the same bytes, the same refusals with the same messages. The
codec's general path (``_csv_table``, the reader of any number of rows) is called
directly as the reference; the model's is XGBoost's own Python wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from sagelab.algorithms import InMemorySource, Prediction
from sagelab.algorithms._common import as_features
from sagelab.algorithms._xgboost import XGBoostAlgorithm
from sagelab.algorithms.testing import RecordingCallbacks
from sagelab.errors import InvalidInput
from sagelab.serving._codec import (
    BadRequest,
    _csv_table,
    _one_csv_row,
    _text,
    csv_lines,
    decode_rows,
    encode_prediction,
)

CSV = "text/csv"
CANCER = load_breast_cancer().data  # 569 rows x 30 features
WIDTH = CANCER.shape[1]


def _result(read: Callable[[], np.ndarray]) -> tuple[Any, ...]:
    """What reading gives: the rows' bytes, or the refusal."""
    try:
        X = read()
    except BadRequest as exc:
        return ("refused", exc.status, str(exc))
    return ("rows", X.dtype.str, X.shape, X.flags.c_contiguous, X.tobytes())


def _outcome(body: bytes, num_features: int = WIDTH) -> tuple[Any, ...]:
    return _result(lambda: decode_rows(body, CSV, num_features, None))


def _general(body: bytes, num_features: int = WIDTH) -> tuple[Any, ...]:
    """The general path's answer to the same body."""
    return _result(lambda: _csv_table(_text(body), num_features))


def _line(row: np.ndarray, fmt: Callable[[float], str] = repr) -> bytes:
    return ",".join(fmt(float(v)) for v in row).encode()


# ---------------------------------------------------------------------- decoding
@pytest.mark.parametrize(
    "fmt",
    [repr, "{:.9g}".format, "{:.3e}".format, lambda v: f"  {v!r} ", lambda v: f"+{abs(v)!r}"],
    ids=["repr", "9 digits", "exponent", "spaces", "plus sign"],
)
def test_one_csv_row_reads_real_rows_as_the_general_path(fmt: Callable[[float], str]) -> None:
    for row in CANCER[::7]:
        body = _line(row, fmt)
        assert _one_csv_row(body.decode(), WIDTH) is not None  # the fast path answered
        got = _outcome(body)
        assert got[0] == "rows"
        assert got == _general(body)
        for ending in (b"\n", b"\r\n", b"\r"):
            assert _one_csv_row((body + ending).decode(), WIDTH) is not None
            assert _outcome(body + ending) == got


def test_the_benchmark_payload_is_read_by_the_fast_path() -> None:
    # benchmarks/serving.py: one row of standard normal values, written with repr.
    row = np.random.default_rng(0).standard_normal(20)
    body = _line(row)
    X = decode_rows(body, CSV, 20, None)
    assert _one_csv_row(body.decode(), 20) is not None
    assert X.shape == (1, 20) and X.dtype == np.float64 and X.flags.c_contiguous
    assert np.array_equal(X[0], row)
    assert _outcome(body, 20) == _general(body, 20)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        b"   ",
        b"\r\n\r\n",
        b"1,2,3",  # too few fields
        _line(CANCER[0]) + b",1.0",  # one too many
        _line(CANCER[0])[:-3] + b"abc",  # not a number
        b"," * (WIDTH - 1),  # empty fields
        b"0x10," + _line(CANCER[0][1:]),
        b"1_000," + _line(CANCER[0][1:]),  # Python's float reads it: so does NumPy's
        b"nan," + _line(CANCER[0][1:]),
        b"NaN," + _line(CANCER[0][1:]),
        _line(CANCER[0][:-1]) + b",inf",
        _line(CANCER[0][:-1]) + b",-Infinity",
        _line(CANCER[0][:-1]) + b",1e400",  # overflows to infinity
        b"1e308,1e308," + _line(CANCER[0][2:]),  # finite values whose sum overflows
        b"\xd9\xa1\xd9\xa2," + _line(CANCER[0][1:]),  # Arabic-Indic digits
        _line(CANCER[0]) + b"\n" + _line(CANCER[1]),  # two rows
        _line(CANCER[0]) + b"\n\n" + _line(CANCER[1])[:20],  # second row too short
        _line(CANCER[0]).replace(b",", b"\n,", 1),  # a line break inside the row
        _line(CANCER[0]).replace(b",", b"\x0b,", 1),  # other line boundaries
        _line(CANCER[0]).replace(b",", b"\xe2\x80\xa8,", 1),
        _line(CANCER[0]).replace(b",", b",\x1c", 1),
        _line(CANCER[0]).replace(b",", b"\xc2\x85,", 1),
        _line(CANCER[0]) + b"\r" + _line(CANCER[1]),  # rows ended by "\r" alone
        _line(CANCER[0]) + b"\n\n",  # blank lines after the row
        _line(CANCER[0]) + b"\n \t\n",
        b"\n" + _line(CANCER[0]),  # before it
        b"\r\n" + _line(CANCER[0]) + b"\r\n",
        _line(CANCER[0]).replace(b",", b";"),  # wrong separator
        b"\xff\xfe" + _line(CANCER[0]),  # not UTF-8
        _line(CANCER[0])[:10] + b"\xc3(" + _line(CANCER[0])[10:],
    ],
)
def test_bad_and_odd_bodies_get_the_general_path_answer(body: bytes) -> None:
    assert _outcome(body) == _general(body)


def test_refusals_name_the_problem() -> None:
    # The fast path hands these to the general path, which words them (row, column, value).
    nan = _outcome(b"nan," + _line(CANCER[0][1:]))
    assert nan[:2] == ("refused", 400) and "Row 1, feature 1" in nan[2] and "finite" in nan[2]
    short = _outcome(b"1,2,3")
    assert short[:2] == ("refused", 400) and "3 value(s)" in short[2] and str(WIDTH) in short[2]
    word = _outcome(_line(CANCER[0][:-1]) + b",abc")
    assert word[:2] == ("refused", 400) and f"column {WIDTH}" in word[2] and "'abc'" in word[2]
    assert _outcome(b"")[:2] == ("refused", 400)


_FIELD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "nan",
        "-inf",
        "Infinity",
        "1e400",
        "1e308",
        "1_0",
        "0x1",
        "abc",
        "1.5.2",
        "١",
        "\n",
        "\r",
        "\x1c",
    ]
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """A real row written in one of several ways, then perhaps broken."""
    row = CANCER[draw(st.integers(0, len(CANCER) - 1))]
    fmt = draw(st.sampled_from([repr, "{:.6g}".format, "{:e}".format, lambda v: f" {v!r}\t"]))
    fields = [fmt(float(v)) for v in row]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(fields) - 1))
        change = draw(st.sampled_from(["replace", "append", "drop", "insert"]))
        text = draw(st.one_of(_FIELD_TEXT, st.text(max_size=6)))
        if change == "replace":
            fields[i] = text
        elif change == "append":
            fields[i] += text
        elif change == "drop":
            del fields[i]
        else:
            fields.insert(i, text)
    ending = draw(st.sampled_from(["", "\n", "\r\n", " "]))
    return (",".join(fields) + ending).encode()


@settings(max_examples=300, deadline=None)
@given(_bodies())
def test_any_body_gets_the_general_path_answer(body: bytes) -> None:
    assert _outcome(body) == _general(body)


# ---------------------------------------------------------------------- encoding
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_value_is_written_as_the_general_path_writes_it(dtype: type) -> None:
    values = np.asarray(load_diabetes().target[:50] / 7.0, dtype=dtype)
    # A prediction of several rows goes the general way: its lines are the reference.
    lines = encode_prediction(Prediction(values=values), CSV).splitlines(keepends=True)
    for value, line in zip(values, lines, strict=True):
        one = Prediction(values=np.array([value], dtype=dtype), labels=np.array([1]))
        assert encode_prediction(one, CSV) == line


def test_one_non_finite_value_is_refused_as_before() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="not a finite number"):
            encode_prediction(Prediction(values=np.array([bad])), CSV)


def test_other_predictions_keep_the_general_path() -> None:
    probabilities = np.array([[0.25, 0.75]])
    multi = Prediction(values=np.array([0.75]), probabilities=probabilities)
    assert encode_prediction(multi, CSV) == b"0.25,0.75\n"
    integers = Prediction(values=np.array([3]))
    assert encode_prediction(integers, CSV) == b"3\n"
    json_body = encode_prediction(Prediction(values=np.array([0.5])), "application/json")
    assert json_body == b'{"predictions":[{"score":0.5}]}'


def _repr_lines(values: np.ndarray) -> bytes:
    """The reference: every value through ``repr``, one line per row."""
    rows = values.tolist() if values.ndim == 2 else [[v] for v in values.tolist()]
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


#: Where repr's notation changes, and the extremes.
EDGES = np.array(
    [
        1e-4,
        np.nextafter(1e-4, 0),
        np.nextafter(1e-4, 1),
        1e16,
        np.nextafter(1e16, 0),
        -1e-5,
        -1e16,
        5e-324,
        np.finfo(np.float64).max,
        np.finfo(np.float64).tiny,
        0.0,
        -0.0,
        1.0,
        0.1,
        1 / 3,
        123456789.0,
    ]
)


def test_many_values_are_written_as_repr_writes_them() -> None:
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**64, size=120_000, dtype=np.uint64, endpoint=False)
    anywhere = bits.view(np.float64)
    anywhere = anywhere[np.isfinite(anywhere)]  # every exponent, both signs
    common = rng.random(60_000) * 10.0 ** rng.integers(-7, 18, size=60_000).astype(float)
    probabilities = rng.random(60_000).astype(np.float32)  # as float32 models give them
    for values in (anywhere, common, probabilities, EDGES):
        assert csv_lines(values) == _repr_lines(values)
        matrix = values[: len(values) // 4 * 4].reshape(-1, 4)
        assert csv_lines(matrix) == _repr_lines(matrix)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
    st.sampled_from([np.float64, np.float32]),
)
def test_any_finite_values_are_written_as_repr_writes_them(
    values: list[float], dtype: type
) -> None:
    with np.errstate(over="ignore"):
        array = np.asarray(values).astype(dtype)
    array = array[np.isfinite(array)]
    if len(array):
        assert csv_lines(array) == _repr_lines(array)
        assert encode_prediction(Prediction(values=array), CSV) == _repr_lines(array) + b"\n"


def test_real_predictions_are_written_as_repr_writes_them() -> None:
    for objective, (X, y) in MODELS.items():
        pred = _fit(X, y, objective).predict(X)
        array = pred.probabilities if pred.probabilities is not None else pred.values
        assert encode_prediction(pred, CSV) == _repr_lines(np.asarray(array)) + b"\n"


# ---------------------------------------------------------------------- the model's fast path
def _fit(X: np.ndarray, y: np.ndarray, objective: str) -> XGBoostAlgorithm:
    hp: dict[str, Any] = {"num_round": 15, "max_depth": 4, "objective": objective}
    algorithm = XGBoostAlgorithm(hp, seed=0)
    algorithm.fit(InMemorySource(X, y.astype(np.float64)), None, RecordingCallbacks())
    algorithm.set_prediction_threads(1)
    return algorithm


_IRIS = load_iris()
_DIABETES = load_diabetes()
_CANCER_Y = load_breast_cancer().target
MODELS = {
    "binary:logistic": (CANCER, _CANCER_Y),
    "binary:logitraw": (CANCER, _CANCER_Y),
    "multi:softprob": (_IRIS.data, _IRIS.target),
    "multi:softmax": (_IRIS.data, _IRIS.target),
    "reg:squarederror": (_DIABETES.data, _DIABETES.target),
}


def _same(a: Prediction, b: Prediction) -> None:
    assert a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values)
    for x, y in ((a.labels, b.labels), (a.probabilities, b.probabilities)):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request: pytest.FixtureRequest) -> tuple[XGBoostAlgorithm, np.ndarray]:
    X, y = MODELS[request.param]
    return _fit(X, y, request.param), X


def test_direct_call_predicts_what_xgboost_predicts(
    model: tuple[XGBoostAlgorithm, np.ndarray],
) -> None:
    algorithm, X = model
    booster = algorithm._booster
    algorithm.predict(X[:1])
    dense = algorithm._dense
    assert dense is not None and dense.usable  # the direct call is in use
    # each answer is the caller's own: XGBoost reuses its output buffer on the next call
    first = dense.predict(X[:1])
    kept = first.copy()
    second = dense.predict(X[-1:])
    assert np.array_equal(first, kept) and first.flags.owndata and first.flags.writeable
    assert np.array_equal(second, booster.inplace_predict(X[-1:]))
    with_missing = X[:40].copy()
    with_missing[::3, 1] = np.nan
    inputs = [X[:1], X[5:6], X, X.astype(np.float32), with_missing]
    for rows in inputs:
        for margin in (False, True):
            got = dense.predict(np.ascontiguousarray(rows), margin=margin)
            kind = "margin" if margin else "value"
            expected = booster.inplace_predict(rows, predict_type=kind)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert np.array_equal(got, expected, equal_nan=True)


def test_predictions_match_the_wrapper_path_row_by_row(
    model: tuple[XGBoostAlgorithm, np.ndarray],
) -> None:
    algorithm, X = model
    # Several Fortran-ordered rows are not what the direct call takes: XGBoost's wrapper
    # predicts them, and its answers are the reference.
    reference = algorithm.predict(np.asfortranarray(X[:60]))
    whole = algorithm.predict(X[:60])
    _same(whole, reference)
    for i in range(0, 60, 6):
        one = algorithm.predict(X[i : i + 1])
        expected = Prediction(
            values=reference.values[i : i + 1],
            labels=None if reference.labels is None else reference.labels[i : i + 1],
            probabilities=None
            if reference.probabilities is None
            else reference.probabilities[i : i + 1],
        )
        _same(one, expected)
        # and from a request body to the answer, as an endpoint does it
        body = _line(X[i])
        decoded = decode_rows(body, CSV, X.shape[1], None)
        assert encode_prediction(algorithm.predict(decoded), CSV) == encode_prediction(
            expected, CSV
        )
    # lists of rows and float32 rows are converted first, as before
    _same(algorithm.predict(X[:3].tolist()), algorithm.predict(X[:3]))
    _same(
        algorithm.predict(X[:3].astype(np.float32)),
        algorithm.predict(X[:3].astype(np.float32).tolist()),
    )


def test_model_refuses_what_it_refused() -> None:
    algorithm = _fit(CANCER, _CANCER_Y, "binary:logistic")
    row = CANCER[:1].copy()
    row[0, 4] = np.inf
    with pytest.raises(InvalidInput) as caught:
        algorithm.predict(row)
    with pytest.raises(InvalidInput) as reference:
        as_features(row, algorithm="xgboost", sparse_ok=True, allow_missing=True)
    assert str(caught.value) == str(reference.value)
    short = CANCER[:1, :10].copy()
    with pytest.raises(InvalidInput, match="trained on 30 features but got rows with 10"):
        algorithm.predict(short)
    with pytest.raises(InvalidInput, match="no rows"):
        algorithm.predict(np.empty((0, WIDTH)))
    # NaN marks a missing value for XGBoost: predicted, as before
    missing = CANCER[:1].copy()
    missing[0, 2] = np.nan
    assert np.isfinite(algorithm.predict(missing).values).all()
