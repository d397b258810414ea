"""The query side's pure parts: cursors, the list parameters, and which indexes an order is in."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from order_query.main import create_app as api_app
from order_query.projection import index_key, indexes
from order_query.queries import BadCursor, Cursor, Filters, decode_cursor, encode_cursor
from order_query.schemas import ListParams
from tests.support.factories import order_out


@given(score=st.floats(min_value=-1e12, max_value=1e12), order_id=st.uuids())
def test_a_cursor_decodes_to_exactly_what_was_encoded(score: float, order_id: uuid.UUID) -> None:
    cursor = Cursor(score, str(order_id))
    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "raw",
    [
        '[NaN, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"]',
        '[Infinity, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"]',
        '[1.5, "not an id"]',
        "[1.5]",
        '{"score": 1.5}',
        '"text"',
        '[[1], "3f2504e0-4f89-11d3-9a0c-0305e82c3301"]',
    ],
)
def test_a_cursor_this_api_did_not_give_is_refused(raw: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(base64.urlsafe_b64encode(raw.encode()).decode())


@pytest.mark.parametrize("cursor", ["", "!!!", "%%%", "\u00e9t\u00e9"])
def test_a_cursor_that_is_not_base64_json_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def test_a_time_without_a_zone_is_utc() -> None:
    params = ListParams(created_from=datetime(2026, 1, 2, 3, 4, 5))
    assert params.created_from == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "values",
    [
        {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
        {"min_total": "10", "max_total": "9.99"},
        {"min_total": "-0.01"},
        {"limit": 0},
        {"limit": 501},
        {"status": "LOST"},
        {"page": 2},
    ],
)
def test_list_parameters_that_cannot_be_met_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ListParams.model_validate(values)


def test_the_status_is_read_as_people_type_it() -> None:
    assert ListParams.model_validate({"status": " cancelled "}).status == "CANCELED"


def test_the_totals_bounds_are_compared_as_redis_reads_them() -> None:
    assert Filters().total_bounds() == (None, None)
    bounds = Filters(min_total=Decimal("5"), max_total=Decimal("10.01")).total_bounds()
    assert bounds == (5.0, 10.01)


def test_a_live_order_is_in_its_users_and_everybodys_indexes_all_and_by_status() -> None:
    order = order_out(status="PAID")
    owner = str(order.user_id)
    assert indexes(order) == {
        index_key(),
        index_key(None, "PAID"),
        index_key(owner),
        index_key(owner, "PAID"),
    }
    assert len(indexes(order)) == 4


def test_a_deleted_order_is_in_no_index() -> None:
    assert indexes(order_out(status="PAID", is_deleted=True)) == set()


def test_every_list_route_documents_each_list_parameter_as_fastapi_would() -> None:
    """The list routes validate their query string themselves (decision 52): their OpenAPI
    still names every filter, and every schema it points to is in the document."""
    document = api_app().openapi()
    schemas = document["components"]["schemas"]
    for path in ("/orders", "/orders/user/{user_id}", "/api/v1/orders/"):
        parameters = document["paths"][path]["get"]["parameters"]
        in_query = {p["name"]: p for p in parameters if p["in"] == "query"}
        assert list(in_query) == list(ListParams.model_fields), path
        assert in_query["limit"]["schema"]["default"] == 50
        assert in_query["user_id"]["description"] == "Admins only"
        refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(parameters))
        assert refs and all(ref in schemas for ref in refs), path
