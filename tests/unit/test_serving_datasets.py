"""Dataset ids and parsing: every mistake is a precise 4xx, good data round-trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from serving.datasets import DatasetStore, parse_csv, parse_file, parse_rows, validate_id
from serving.exceptions import ClientInputError


@pytest.mark.parametrize("good", ["a", "ref-2026.11_v1", "9", "A" * 64])
def test_valid_ids(good: str) -> None:
    assert validate_id(good) == good


@pytest.mark.parametrize("bad", ["", ".hidden", "-x", "../etc", "a/b", "a b", "é", "A" * 65])
def test_invalid_ids_say_what_is_allowed(bad: str) -> None:
    with pytest.raises(ClientInputError) as caught:
        validate_id(bad)
    assert (caught.value.status, caught.value.code) == (422, "invalid_dataset_id")
    assert repr(bad) in caught.value.message and "starting with a letter or digit" in (
        caught.value.message
    )


def test_csv_parses_numbers_and_empty_cells_as_missing() -> None:
    frame = parse_csv("a, b\n1,2.5\n,3e2\n", max_rows=10)
    assert list(frame.columns) == ["a", "b"]
    assert math.isnan(frame["a"][1]) and frame["b"].tolist() == [2.5, 300.0]


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("", "empty_dataset", "no header line"),
        ("a,b\n", "empty_dataset", "no rows"),
        ("a,a\n1,2\n", "duplicate_column", "'a' appears twice"),
        ("a,\n1,2\n", "invalid_column", "a column name is empty"),
        ("a,b\n1,2\n3,x\n", "non_numeric", "column 'b' must hold numbers: 'x' on line 3"),
        ("a,b\n1,2\n1,2,3\n", "malformed_csv", "line 3 has 3 fields; the header has 2"),
        ("a\ninf\n", "non_finite", "column 'a' row 0 is infinite"),
        ("a,b\n1,\n2,\n", "empty_column", "['b']"),
        ("target\n1\n", "no_features", "only 'target'"),
        ("a\n1\n2\n3\n", "too_many_rows", "3 rows; at most 2"),
    ],
)
def test_csv_mistakes_are_precise(text: str, code: str, fragment: str) -> None:
    with pytest.raises(ClientInputError) as caught:
        parse_csv(text, max_rows=2)
    assert (caught.value.status, caught.value.code) == (422, code)
    assert fragment in caught.value.message


def test_json_rows_take_the_union_of_columns() -> None:
    frame = parse_rows([{"a": 1, "b": 2.0}, {"b": None, "c": 3}], max_rows=10)
    assert list(frame.columns) == ["a", "b", "c"]
    assert math.isnan(frame["a"][1]) and math.isnan(frame["b"][1]) and frame["c"][1] == 3.0


@pytest.mark.parametrize(
    ("rows", "code", "fragment", "location"),
    [
        ([], "empty_dataset", "no rows", "rows"),
        ([[1, 2]], "invalid_row", "row 0 must be an object", "rows[0]"),
        ([{"a": 1}, {"a": "7"}], "non_numeric", "'7' is not a number", "rows[1]['a']"),
        ([{"a": True}], "non_numeric", "True is not a number", "rows[0]['a']"),
        ([{"": 1}], "invalid_column", "non-empty", "rows[0]['']"),
        ([{"a": float("inf")}], "non_finite", "infinite", "rows"),
    ],
)
def test_json_row_mistakes_are_precise(
    rows: list[object], code: str, fragment: str, location: str
) -> None:
    with pytest.raises(ClientInputError) as caught:
        parse_rows(rows, max_rows=10)
    assert (caught.value.status, caught.value.code, caught.value.location) == (
        422, code, location,
    )  # fmt: skip
    assert fragment in caught.value.message


def test_store_round_trips_and_refuses_built_ins_and_silent_replacement(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "datasets")
    frame = parse_rows([{"a": 0.1, "b": 1e-300}, {"a": None, "b": 2}], max_rows=10)
    store.save("mine", frame)
    loaded = store.load("mine")
    assert loaded is not None and loaded["b"].tolist() == [1e-300, 2.0]
    assert math.isnan(loaded["a"][1]) and loaded["a"][0] == 0.1
    assert store.ids() == ["reference", "training", "validation", "mine"]
    for dataset_id, code in (("training", "reserved_dataset_id"), ("mine", "dataset_exists")):
        with pytest.raises(ClientInputError) as caught:
            store.save(dataset_id, frame)
        assert (caught.value.status, caught.value.code) == (409, code)
    store.save("mine", frame.head(1), replace=True)
    replaced = store.load("mine")
    assert replaced is not None and len(replaced) == 1
    assert store.load("../mine") is None and store.load("absent") is None


def test_files_by_suffix_and_size(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text('{"rows": [{"a": 1}]}')
    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "bad.json").write_text("[{")
    assert parse_file(tmp_path / "d.json", 1000, 10)["a"].tolist() == [1.0]
    assert parse_file(tmp_path / "d.csv", 1000, 10)["a"].tolist() == [1.0]
    with pytest.raises(ClientInputError) as caught:
        parse_file(tmp_path / "bad.json", 1000, 10)
    assert (caught.value.status, caught.value.code) == (400, "malformed_json")
    with pytest.raises(ClientInputError) as caught:
        parse_file(tmp_path / "d.csv", 3, 10)
    assert (caught.value.status, caught.value.code) == (413, "file_too_large")
