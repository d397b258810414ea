"""The app factory every service starts from: error shapes, probes, metrics by route template."""

import contextlib
import gc
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import generate_latest

from shared.app import GEN0_THRESHOLD, answer_failure, create_app
from shared.failures import (
    DependencyUnavailable,
    Failure,
    Invalid,
    Malformed,
    NotAllowed,
    NotFound,
    Refused,
    Stale,
    Unauthenticated,
    UpstreamRefused,
)

router = APIRouter()


@router.get("/things/{thing_id}")
async def get_thing(thing_id: int) -> dict[str, int]:
    if thing_id == 409:
        raise Refused("taken", details={"thing": thing_id})
    if thing_id == 500:
        raise RuntimeError("boom")
    return {"id": thing_id}


def _app(ready: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def check() -> None:
            if not ready:
                raise ConnectionError("down")

        app.state.readiness = {"db": check}
        yield

    return create_app(title="t", version="1", lifespan=lifespan, routers=[router])


@contextlib.asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_errors_have_one_shape() -> None:
    async with _client(_app()) as client:
        conflict = await client.get("/things/409")
        assert conflict.status_code == 409
        assert conflict.json() == {
            "error": {"code": "conflict", "message": "taken", "details": {"thing": 409}}
        }
        bad = await client.get("/things/abc")
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["loc"] == ["path", "thing_id"]
        missing = await client.get("/nowhere")
        assert missing.json()["error"]["code"] == "not_found"
        crash = await client.get("/things/500")
        assert crash.status_code == 500
        assert crash.json()["error"] == {
            "code": "internal_error",
            "message": "Internal error",
            "details": None,
        }


async def test_metrics_are_per_route_template_not_per_path() -> None:
    app = _app()
    async with _client(app) as client:
        for thing in (1, 2, 3, 409):
            await client.get(f"/things/{thing}")
        text = generate_latest(app.state.metrics_registry).decode()
    assert 'http_calls_total{method="GET",route="/things/{thing_id}"} 4.0' in text
    assert 'http_successes_total{method="GET",route="/things/{thing_id}"} 3.0' in text
    assert 'http_failures_total{method="GET",route="/things/{thing_id}",status="409"} 1.0' in text
    assert (
        'http_request_duration_seconds_count{method="GET",route="/things/{thing_id}"} 4.0' in text
    )
    assert "/things/1" not in text


async def test_readyz_names_the_dependency_that_is_down() -> None:
    async with _client(_app(ready=False)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"db": "unavailable"}
    async with _client(_app()) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready", "checks": {"db": "ok"}}


async def test_a_request_id_is_kept_or_made() -> None:
    async with _client(_app()) as client:
        given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


async def test_the_collector_leaves_what_start_up_built_alone_while_the_app_runs() -> None:
    before = gc.get_threshold()
    async with _client(_app()) as client:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert (await client.get("/things/1")).status_code == 200
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    ("failure", "status", "header"),
    [
        (Malformed("m"), 400, None),
        (Unauthenticated(reason="invalid_request"), 401, 'Bearer error="invalid_request"'),
        (NotAllowed("f"), 403, None),
        (NotFound("n"), 404, None),
        (Refused("r"), 409, None),
        (Stale("s"), 412, None),
        (Invalid("i"), 422, None),
        (UpstreamRefused("u"), 502, None),
        (DependencyUnavailable("d"), 503, "2"),
    ],
)
def test_each_kind_of_failure_has_its_http_answer(
    failure: Failure, status: int, header: str | None
) -> None:
    answer = answer_failure(failure)
    assert answer.status_code == status
    assert json.loads(bytes(answer.body))["error"]["code"] == failure.code
    named = {401: "www-authenticate", 503: "retry-after"}.get(status)
    assert (answer.headers.get(named) if named else None) == header
