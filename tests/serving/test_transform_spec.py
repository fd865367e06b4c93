"""Batch transform's parts that need no job: requests, filters, cutting streams, parsing CSV."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagelab.errors import InvalidInput
from sagelab.serving import TransformSpec
from sagelab.serving._transform_filter import parse_filter
from sagelab.serving._transform_read import Block, Oversized, Span, file_blocks, span_blocks
from sagelab.serving._transform_records import Plan, csv_layout, parse_csv

FEATURES = tuple(f"f{i}" for i in range(4))


def _plan(**fields: object) -> Plan:
    base: dict[str, object] = {
        "algorithm": "xgboost",
        "model": {},
        "settings": {},
        "features": FEATURES,
        "positional": True,
        "whole": False,
        "single_record": False,
        "accept": "text/csv",
        "assemble_line": True,
        "join": False,
    }
    return Plan(**{**base, **fields})  # type: ignore[arg-type]


def _spec(**fields: object) -> TransformSpec:
    return TransformSpec.create(model="m", source="data.csv", output="s3://out/x", **fields)


# ------------------------------------------------------------------------------ requests
def test_transform_spec_takes_sagemaker_spellings_in_any_case() -> None:
    spec = _spec(
        split_type="line",
        batch_strategy="singlerecord",
        content_type="CSV",
        join_source="input",
        accept="jsonlines",
        max_payload_mb=1,
    )
    assert (spec.split_type, spec.batch_strategy, spec.join_source) == (
        "Line",
        "SingleRecord",
        "Input",
    )
    assert (spec.content_type, spec.accept) == ("text/csv", "application/jsonlines")
    assert spec.output == "s3://out/x/" and spec.payload_bytes == 1024 * 1024
    described = spec.describe()
    assert described["TransformInput"]["SplitType"] == "Line"
    assert described["DataProcessing"]["JoinSource"] == "Input"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"split_type": "Lines"}, "SplitType must be one of None, Line"),
        ({"batch_strategy": "Many"}, "BatchStrategy must be one of MultiRecord, SingleRecord"),
        ({"max_payload_mb": 0}, "MaxPayloadInMB must be a number in (0, 100]"),
        ({"max_payload_mb": "6"}, "MaxPayloadInMB"),
        ({"max_concurrent": 0}, "MaxConcurrentTransforms must be an integer in [1, 64]"),
        ({"content_type": "text/xml"}, "ContentType must be one of text/csv"),
        ({"accept": "image/png"}, "Accept must be one of"),
        ({"input_filter": "$..x"}, "InputFilter '$..x' is not a JSONPath"),
        ({"output_filter": "features"}, "OutputFilter 'features'"),
        ({"join_source": "Input", "split_type": "None"}, "needs SplitType Line"),
        ({"join_source": "Input", "assemble_with": "None"}, "needs AssembleWith Line"),
        (
            {"join_source": "Input", "content_type": "application/jsonlines", "accept": "text/csv"},
            "text/csv Accept cannot hold",
        ),
    ],
)
def test_transform_spec_refuses_bad_fields(fields: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _spec(**fields)
    assert words in str(caught.value)


def test_transform_spec_output_must_be_in_the_lake() -> None:
    with pytest.raises(InvalidInput, match="must be a lake location such as s3://"):
        TransformSpec.create(model="m", source="data.csv", output="/tmp/out")
    with pytest.raises(InvalidInput, match="source must be a non-empty string"):
        TransformSpec.create(model="m", source=" ", output="s3://out/")


# ------------------------------------------------------------------------------ filters
def test_transform_filters_select_like_sagemaker() -> None:
    row = ["id", "1", "2", "3", "4"]
    assert parse_filter("$").apply(row) == row
    assert parse_filter("$[1:]").apply(row) == row[1:]
    assert parse_filter("$[0,-1]").apply(row) == ["id", "4"]
    assert parse_filter("$[0,2:4]").apply(row) == ["id", "2", "3"]
    assert parse_filter("$[1:]").indices(5) == [1, 2, 3, 4]
    record = {"id": 7, "features": [1, 2, 3], "SageMakerOutput": {"score": 0.5}}
    assert parse_filter("$.features").apply(record) == [1, 2, 3]
    assert parse_filter("$.features[1:]").apply(record) == [2, 3]
    assert parse_filter("$['id','SageMakerOutput']").apply(record) == {
        "id": 7,
        "SageMakerOutput": {"score": 0.5},
    }
    with pytest.raises(InvalidInput, match="picks index 9, outside a record of 5 fields"):
        parse_filter("$[9]").apply(row)
    with pytest.raises(InvalidInput, match="no key 'label'"):
        parse_filter("$.label").apply(record)
    with pytest.raises(InvalidInput, match="at most 63 characters"):
        parse_filter("$[" + ",".join(["1"] * 40) + "]")


# ------------------------------------------------------------------------------ cutting streams
def _cuts(test: Callable[..., None]) -> Callable[..., None]:
    """Run ``test`` on files of up to 40 lines of any bytes, with or without a last line
    end, cut at any limit."""
    lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=40)
    cases = given(
        lines=lines, limit=st.integers(min_value=1, max_value=120), trailing=st.booleans()
    )
    return settings(max_examples=150, deadline=None)(cases(test))


@_cuts
def test_transform_blocks_are_whole_lines_within_the_payload(
    lines: list[bytes], limit: int, trailing: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing else b"")
    expected = data.split(b"\n")[:-1] if data.endswith(b"\n") or not data else data.split(b"\n")
    kept: dict[int, bytes] = {}
    skipped: list[int] = []
    size = 0
    for part in file_blocks(io.BytesIO(data), limit, whole=False):
        size += part.size
        if isinstance(part, Oversized):
            skipped.append(part.line)
            continue
        assert isinstance(part, Block) and isinstance(part.data, bytes)
        assert 0 < len(part.data) <= limit
        inside = part.data.split(b"\n")
        if part.data.endswith(b"\n"):
            inside = inside[:-1]
        kept.update(enumerate(inside, part.first))
    assert size == len(data)  # every byte is accounted for, once
    assert sorted([*kept, *skipped]) == list(range(1, len(expected) + 1))
    for n, text in enumerate(expected, start=1):
        if n in skipped:
            assert len(text) + 1 > limit or (n == len(expected) and len(text) > limit)
        else:
            assert kept[n] == text


@_cuts
def test_transform_spans_of_a_local_file_are_the_blocks_of_its_stream(
    lines: list[bytes], limit: int, trailing: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing else b"")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_bytes(data)
        streamed = list(file_blocks(io.BytesIO(data), limit, whole=False))
        spans = list(span_blocks(str(path), limit))
        assert len(spans) == len(streamed)
        offset = 0
        for span, block in zip(spans, streamed, strict=True):
            assert type(span) is type(block) and span.size == block.size
            if isinstance(block, Oversized):
                # The stream's head is what had been read of the record; the span's, its start.
                assert isinstance(span, Oversized) and span.line == block.line
                assert span.head == data[offset : offset + block.size][:200].split(b"\n")[0]
                assert span.head.startswith(block.head)
            else:
                assert isinstance(span, Block) and isinstance(span.data, Span)
                assert span.first == block.first and span.data.offset == offset
                assert span.data.read() == block.data
            offset += block.size


def test_transform_span_of_a_file_that_shrank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(b"1,2\n3,4\n")
    (block,) = span_blocks(str(path), 100)
    assert isinstance(block, Block) and isinstance(block.data, Span)
    path.write_bytes(b"1,2\n")
    with pytest.raises(InvalidInput, match="changed while it was transformed"):
        block.data.read()
    path.unlink()
    with pytest.raises(InvalidInput, match="could not be read"):
        block.data.read()


def test_transform_whole_objects_over_the_payload_are_one_failed_record() -> None:
    parts = list(file_blocks(io.BytesIO(b"1,2\n3,4\n"), 5, whole=True))
    assert len(parts) == 1 and isinstance(parts[0], Oversized) and parts[0].size == 8
    assert list(file_blocks(io.BytesIO(b"1,2\n"), 5, whole=True)) == [Block(1, b"1,2\n", 4)]


# ------------------------------------------------------------------------------ CSV records
def test_transform_csv_layout_finds_headers_and_field_counts() -> None:
    named = _plan(positional=False)
    layout = csv_layout(b"x,f3,f1,f0,f2\n1,2,3,4,5\n", named)
    assert (
        layout.skip_first
        and layout.picks == (3, 2, 4, 1)
        and layout.header == ("x", "f3", "f1", "f0", "f2")
    )
    plain = csv_layout(b"7,1,2,3,4\n8,1,2,3,4\n", _plan(input_filter="$[1:]"))
    assert not plain.skip_first and plain.columns == 5 and plain.picks == (1, 2, 3, 4)
    with pytest.raises(InvalidInput, match=r"leave it out with --input-filter '\$\[1:\]'"):
        csv_layout(b"7,1,2,3,4\n", _plan())


def test_transform_csv_fast_and_line_by_line_parsing_agree() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    clean = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X).encode()
    layout = csv_layout(clean, _plan())
    fast = parse_csv(clean, 1, layout, keep_raw=True)
    np.testing.assert_array_equal(fast.X, X)
    assert fast.raw == clean.splitlines() and fast.count == 50 and not fast.errors
    dirty = clean + b"\n1,2,3\n1,2,x,4\n  \n1,,3,4\n"  # a blank line, 3 fields, text, missing
    slow = parse_csv(dirty, 1, layout, keep_raw=True)
    np.testing.assert_array_equal(slow.X[:50], X)
    assert slow.count == 53 and list(slow.lines[-1:]) == [55]
    assert np.isnan(slow.X[-1, 1])
    assert [(e["line"], e["reason"]) for e in slow.errors] == [
        (52, "expected 4 fields, got 3"),
        (53, "field 3 is not a number: 'x'"),
    ]
    assert slow.errors[1]["record"] == "1,2,x,4"
