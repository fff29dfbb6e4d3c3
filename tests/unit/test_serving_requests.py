"""/predict input checking: every mistake is named, with where it is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serving.exceptions import ClientInputError
from serving.requests import decode_json, parse_predict, partial_of

NAMES = [f"f{i}" for i in range(30)]
ROW = [float(i) for i in range(30)]


def parse(body: Any, max_rows: int = 5) -> Any:
    return parse_predict(
        body, default_model="m", features_of={"m": NAMES}, max_rows=max_rows, request_id="rid"
    )


def refused(body: Any, **kwargs: Any) -> ClientInputError:
    with pytest.raises(ClientInputError) as caught:
        parse(body, **kwargs)
    return caught.value


def test_one_row_as_list_or_by_name_gives_the_same_values() -> None:
    as_list = parse({"features": ROW, "request_id": "r-1", "entity_id": "e"})
    by_name = parse({"features": dict(reversed(list(zip(NAMES, ROW, strict=True))))})
    assert as_list.rows[0].values == by_name.rows[0].values == ROW
    assert (as_list.rows[0].request_id, as_list.rows[0].entity_id) == ("r-1", "e")
    assert by_name.rows[0].request_id == "rid" and not by_name.batch


def test_batch_rows_get_their_own_ids() -> None:
    call = parse({"instances": [{"features": ROW}, {"features": ROW, "request_id": "own"}]})
    assert call.batch and [r.request_id for r in call.rows] == ["rid:0", "own"]


@pytest.mark.parametrize(
    ("body", "status", "code", "location", "message_part"),
    [
        ({"features": ROW[:29]}, 422, "wrong_feature_count", "features", "expected 30 features, got 29"),  # noqa: E501
        ({"features": [*ROW, 1.0]}, 422, "wrong_feature_count", "features", "got 31"),
        ({"features": [*ROW[:3], "x", *ROW[4:]]}, 422, "non_numeric", "features[3]", "string 'x'"),
        ({"features": [True, *ROW[1:]]}, 422, "non_numeric", "features[0]", "a boolean"),
        ({"features": [None, *ROW[1:]]}, 422, "non_numeric", "features[0]", "null"),
        ({"features": [10**400, *ROW[1:]]}, 422, "non_finite", "features[0]", "finite"),
        ({"features": "abc"}, 422, "invalid_features", "features", "list of 30 numbers"),
        ({"model_name": "other", "features": ROW}, 404, "unknown_model", "model_name", "served: ['m']"),  # noqa: E501
        ({"feature": ROW}, 422, "unknown_field", "body", "['feature']"),
        ({}, 422, "invalid_body", "body", "exactly one of"),
        ({"features": ROW, "instances": []}, 422, "invalid_body", "body", "exactly one of"),
        ([1, 2], 422, "invalid_body", "body", "a list"),
        ({"instances": []}, 422, "invalid_instances", "instances", "non-empty"),
        ({"instances": [{"features": ROW}] * 6}, 422, "too_many_rows", "instances", "at most 5"),
        ({"instances": [{"features": ROW}, 3]}, 422, "invalid_instance", "instances[1]", "an object"),  # noqa: E501
        ({"instances": [{"x": 1}]}, 422, "unknown_field", "instances[0]", "['x']"),
        ({"features": ROW, "request_id": 7}, 422, "invalid_request_id", "request_id", "string"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_with_its_place(
    body: Any, status: int, code: str, location: str, message_part: str
) -> None:
    error = refused(body)
    assert (error.status, error.code, error.location) == (status, code, location)
    assert message_part in error.message


def test_unknown_and_missing_names_are_all_listed() -> None:
    features = dict(zip(NAMES, ROW, strict=True))
    del features["f3"], features["f7"]
    features["radius"] = 1.0
    features["zzz"] = 2.0
    error = refused({"features": features})
    assert error.code == "unknown_features"
    assert "unknown feature names ['radius', 'zzz']" in error.message
    assert "missing feature names ['f3', 'f7']" in error.message


def test_nan_and_infinity_literals_are_refused_where_they_are() -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        values = ", ".join(["1"] * 5 + [literal] + ["1"] * 24)
        body = decode_json(f'{{"instances": [{{"features": [{values}]}}]}}'.encode())
        error = refused(body)
        assert (error.code, error.location) == ("non_finite", "instances[0].features[5]")
        assert literal in error.message


def test_named_feature_errors_give_the_name() -> None:
    features: dict[str, Any] = dict(zip(NAMES, ROW, strict=True))
    features["f9"] = "big"
    error = refused({"instances": [{"features": ROW}, {"features": features}]})
    assert error.location == "instances[1].features['f9']"


def test_malformed_json_says_where() -> None:
    with pytest.raises(ClientInputError) as caught:
        decode_json(b'{"features": [1, 2')
    assert caught.value.status == 400 and caught.value.code == "malformed_json"
    assert "line 1 column" in caught.value.message
    with pytest.raises(ClientInputError) as caught:
        decode_json(b"\xff\xfe")
    assert "not UTF-8" in caught.value.message


def test_partial_keeps_what_a_bad_request_said() -> None:
    body = json.loads('{"request_id": "mine", "model_name": "m", "entity_id": "e", "features": 1}')
    found = partial_of(body, "fallback")
    assert (found.request_id, found.model_name, found.entity_id) == ("mine", "m", "e")
    assert partial_of({"request_id": 5}, "fallback").request_id == "fallback"
    assert partial_of([1], "fallback").request_id == "fallback"
