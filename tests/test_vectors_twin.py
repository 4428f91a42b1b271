"""Bring your own vectors through the ``api`` function as API Gateway invokes it, in the
twin (Python 3.12, its layers only, which carry no pyarrow): a small batch imported and
searched by a raw vector, with a filter; an imported image's file is refused."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from pixdex.app.service.keys import create_key
from pixdex.config import Settings
from tests.twin.stack import Twin
from tests.vectors_support import clustered, model_name


def test_vectors_imported_and_searched_through_the_api_function(twin: Twin) -> None:
    key = create_key(Settings(database_url=SecretStr(twin.database.url)), "byo-twin").key
    created = twin.api("POST", "/v1/datasets", {"name": "byo"}, key=key)
    assert created.status == 201, created.body
    dataset_id = created.json()["id"]
    model = model_name("twin")
    vectors = clustered(12, 32, seed=7)
    rows: list[dict[str, Any]] = [
        {"name": f"t{n}", "embedding": vectors[n].tolist(), "split": "a" if n < 6 else "b"}
        for n in range(12)
    ]
    rows.append({"name": "t0", "embedding": vectors[0].tolist()})
    answer = twin.api("POST", f"/v1/datasets/{dataset_id}/vectors",
                      {"model": model, "vectors": rows}, key=key)
    assert answer.status == 200, answer.body
    report = answer.json()
    assert (report["imported"], report["reasons"]) == (12, {"duplicate_name": 1})

    found = twin.api("POST", "/v1/search", {"in_dataset": "byo", "model": model, "split": "b",
                                            "vector": vectors[8].tolist(), "limit": 3}, key=key)
    assert found.status == 200, found.body
    results = found.json()["results"]
    assert results[0]["name"] == "t8" and all(int(r["name"][1:]) >= 6 for r in results)

    image = results[0]["id"]
    refused = twin.api("GET", f"/v1/images/{image}/thumbnail", key=key)
    assert refused.status == 409 and refused.json()["error"]["code"] == "no_file"
    assert "pyarrow" not in twin.functions["api"].loaded_modules
