"""What a client sends is text a database can store: refused at the schema, naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from order_command.api import parse_if_match
from order_command.schemas import OrderDraft
from shared.app import answer_failure
from shared.failures import Malformed
from shared.schemas import storable


@pytest.mark.parametrize("text", ["nul\x00", "\ud800", "a\udfffb"])
def test_nul_and_unpaired_surrogates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        storable(text)


def test_ordinary_text_passes_unchanged() -> None:
    assert storable("Grüner Tee, 緑茶 🍵") == "Grüner Tee, 緑茶 🍵"


def test_a_nested_field_is_checked_and_named() -> None:
    with pytest.raises(ValidationError) as caught:
        OrderDraft.model_validate({"items": [{"name": "tea\x00", "price": "1.00", "quantity": 1}]})
    [error] = caught.value.errors()
    assert error["loc"] == ("items", 0, "name")


@pytest.mark.parametrize(
    ("header", "versions"),
    [('"3"', {3}), ("3", {3}), ('W/"3"', {3}), ('"1", "2"', {1, 2}), ("*", None)],
)
def test_if_match_takes_entity_tags_and_star(header: str, versions: set[int] | None) -> None:
    assert parse_if_match(header) == (None if versions is None else frozenset(versions))


@pytest.mark.parametrize(
    "header", ["", "abc", "1" * 5000, "\u00b2", "\u0661", '"1', '"1", *', "1.0"]
)
def test_if_match_that_names_no_version_is_a_400(header: str) -> None:
    with pytest.raises(Malformed) as caught:
        parse_if_match(header)
    assert answer_failure(caught.value).status_code == 400
