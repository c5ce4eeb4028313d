"""TextQueryRoute: /predict skips FastAPI's parameter solving yet takes and documents the same
query parameters; any other endpoint shape keeps FastAPI's own handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.testclient import TestClient

from app.lean_route import TextQueryRoute
from app.routes import predict
from tests.app.helpers import WOUND_IMAGE, WOUND_TEXT, b64

Text = Annotated[str | None, Query(description="a text")]


def _echo_app() -> tuple[FastAPI, APIRouter]:
    router = APIRouter(route_class=TextQueryRoute)

    @router.get("/lean")
    async def lean(request: Request, a: Text = None, b: Text = None) -> Response:
        return Response(f"{a!r} {b!r} {request.url.path}")

    @router.get("/numbered")
    async def numbered(request: Request, n: int = 3) -> Response:
        return Response(repr(n))

    @router.get("/depends")
    async def depends(request: Request, a: Annotated[str, Depends(lambda: "dep")]) -> Response:
        return Response(a)

    @router.get("/plain")
    def plain(request: Request, a: Text = None) -> Response:
        return Response(repr(a))

    app = FastAPI()
    app.include_router(router)
    return app, router


def test_predict_is_lean_and_keeps_its_documented_parameters() -> None:
    [route] = [r for r in predict.router.routes if isinstance(r, TextQueryRoute)]
    assert route.lean
    app = FastAPI()
    app.include_router(predict.router)
    parameters = app.openapi()["paths"]["/predict"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [("model", "query"), ("role", "query")]
    assert parameters[1]["schema"]["enum"] == ["student", "teacher"]


def test_query_values_reach_the_endpoint_as_fastapi_would_give_them() -> None:
    app, _ = _echo_app()
    with TestClient(app) as client:
        assert client.get("/lean").text == "None None /lean"
        assert client.get("/lean?a=x&a=y&b=").text == "'y' '' /lean"  # the last value wins
        assert client.get("/lean?b=%C3%A9").text == "None 'é' /lean"


def test_other_endpoint_shapes_keep_fastapis_handler() -> None:
    app, router = _echo_app()
    lean = {getattr(r, "path", ""): r.lean for r in router.routes if isinstance(r, TextQueryRoute)}
    assert lean == {"/lean": True, "/numbered": False, "/depends": False, "/plain": False}
    with TestClient(app) as client:
        assert client.get("/numbered?n=5").text == "5"
        assert client.get("/numbered?n=x").status_code == 422  # still validated
        assert client.get("/depends").text == "dep"
        assert client.get("/plain?a=z").text == "'z'"


def test_a_lean_endpoint_that_returns_no_response_fails_loudly() -> None:
    router = APIRouter(route_class=TextQueryRoute)

    @router.get("/dict")
    async def as_dict(request: Request) -> dict[str, str]:
        return {"a": "b"}

    app = FastAPI()
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/dict").status_code == 500


def test_predict_reads_the_model_from_the_query(client: TestClient) -> None:
    payload = {"image": b64(WOUND_IMAGE.read_bytes()), "text": WOUND_TEXT}
    answer = client.post("/predict?model=medpix&role=teacher", json=payload)
    assert answer.status_code == 200 and answer.json()["model"]["name"] == "medpix-teacher"
    answer = client.post("/predict?model=medpix&model=wound", json=payload)
    assert answer.status_code == 200 and answer.json()["model"]["name"] == "wound-student"
    assert client.post("/predict?model=nope", json=payload).status_code == 404
