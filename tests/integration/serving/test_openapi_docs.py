"""/openapi.json describes every route and each served model's inputs; /docs works offline (its
Swagger UI files come from an installed package, at relative URLs the server itself answers)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from servers import Server

from seaway.serving.dataplane import DataPlane
from seaway.serving.http import openapi
from seaway.serving.http.app import create_app

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_the_description_has_every_route_and_each_models_inputs(
    serve: Callable[..., Server], fraud_model
) -> None:
    server = serve("models:/fraud@production")
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    routes = {route.path for route in create_app(DataPlane()).router.routes}  # type: ignore[attr-defined]
    missing = sorted(routes - set(spec["paths"]) - {"/docs/{asset}"})
    assert missing == []
    for path in ("/v2/repository/models/{name}/load", "/v2/repository/models/{name}/unload"):
        assert set(spec["paths"][path]["post"]["responses"]) >= {"200", "404"}

    infer = spec["paths"]["/v2/models/fraud/infer"]["post"]
    body = infer["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/fraud.InferRequest"}
    schema = spec["components"]["schemas"]["fraud.InferRequest"]
    tensors = schema["properties"]["inputs"]["items"]["oneOf"]
    named = {
        t["properties"]["name"]["enum"][0]: t["properties"]["datatype"]["enum"]
        for t in tensors
        if "enum" in t["properties"]["name"]
    }
    assert named == {name: ["FP64"] for name in ("age", "income", "score", "tenure")}
    assert any("2-D tensor" in t["description"] for t in tensors)  # the one-matrix form
    outputs = schema["properties"]["outputs"]["items"]["properties"]["name"]["enum"]
    assert outputs == ["predict", "predict_proba"]

    # the described body is what the server takes
    rows = fraud_model[1].head(2)
    answer = httpx.post(
        f"{server.url}/v2/models/fraud/infer",
        json={
            "inputs": [
                {"name": c, "shape": [2], "datatype": "FP64", "data": rows[c].tolist()}
                for c in rows.columns
            ]
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_docs_reference_only_local_files_that_the_server_serves(
    serve: Callable[..., Server], fraud_model
) -> None:
    server = serve("models:/fraud@production")
    page = httpx.get(f"{server.url}/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", page.text)
    assert urls and "docs/swagger-ui-bundle.js" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not local"
        fetched = httpx.get(urljoin(f"{server.url}/docs", url), timeout=10)
        assert fetched.status_code == 200, url
        assert fetched.content, url
    script = httpx.get(f"{server.url}/docs/swagger-ui-bundle.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    for other in ("index.html", "..%2Fopenapi.py", "swagger-ui-bundle.js.map"):
        assert httpx.get(f"{server.url}/docs/{other}", timeout=10).status_code == 404


def test_docs_say_what_to_install_without_swagger_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "swagger_ui_folder", lambda: None)
    app = create_app(DataPlane())

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    page = asyncio.run(get("/docs"))
    assert page.status_code == 200
    assert "pip install 'seaway[swagger]'" in page.text and "openapi.json" in page.text
    assert "<script" not in page.text and "://" not in page.text  # nothing from the network
    assert asyncio.run(get("/docs/swagger-ui.css")).status_code == 404


def test_serving_docs_give_the_status_the_repository_load_answers() -> None:
    # an unknown version is a 404, as the server answers (test_hot_swap checks the server)
    text = (DOCS / "serving.md").read_text()
    sentence = text[text.index("`load` answers") :].split("\n\n", 1)[0]
    assert "404" in sentence and "unknown" in sentence
