"""Weaviate's GraphQL ``Get``: ``POST /v1/graphql {"query", "variables"}``.

A class is a dataset (its name, or the dataset whose name matches it ignoring case, since
Weaviate capitalises class names). Supported, for each class under ``Get``:

* ``nearImage: {image: BASE64}`` and ``nearVector: {vector: [...]}``, each with
  ``distance`` (cosine distance, at most) or ``certainty`` (``(1 + cosine) / 2``, at
  least) and ``targetVectors: ["MODEL"]`` (a named vector: a model the dataset lists);
  ``nearText: {concepts: [...]}`` becomes a prompt;
* ``limit`` (default 10, at most 250), ``offset``, ``autocut`` (Weaviate's jump rule);
* ``where`` on our fields: ``split``, ``batch_id``, ``annotation_job_id`` (``Equal``),
  ``folder`` (``Equal`` or ``Like "/a/*"``: the folder and below), ``tags`` (``Equal``,
  ``ContainsAll``), ``annotations`` / ``objects`` / ``scenes`` / ``attributes``
  (``Equal``, ``ContainsAny``), combined with ``And``;
* properties :data:`PROPERTIES` and ``_additional { id distance certainty vector }``.

Anything else (``Or``, ``bm25``, ``hybrid``, ``sort``, ``Aggregate``...) answers 400 naming
it and what is supported. The search itself is :func:`pixdex.app.service.search.run_search`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pixdex.api.deps import Caller, settings
from pixdex.api.dialects.graphql import Enum, Field, parse
from pixdex.api.openapi import new_router, responses
from pixdex.app.service.datasets import list_datasets
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import SearchRequest, SearchResult
from pixdex.errors import BadRequestError, NotFoundError

router = new_router()
DEFAULT_LIMIT = 10
ARGUMENTS = ("nearImage", "nearVector", "nearText", "limit", "offset", "autocut", "where")
ADDITIONAL = ("id", "distance", "certainty", "vector")
# Weaviate property -> the /v1/search field that carries it.
PROPERTIES = {
    "name": "name", "folder": "folder", "dataset": "dataset", "dataset_id": "dataset_id",
    "status": "status", "tags": "tags", "split": "split", "batch_id": "batch_id",
    "annotation_job_id": "annotation_job_id", "width": "width", "height": "height",
    "created": "created", "thumbnail_url": "thumbnail_url", "file_url": "file_url",
    "objects": "auto_tags", "scenes": "auto_tags", "attributes": "auto_tags",
}
_WHERE_TEXT = {"split": "split", "batch_id": "batch_id",
               "annotation_job_id": "annotation_job_id", "folder": "folder_path"}
_WHERE_OPERATORS = ("And", "Equal", "Like", "ContainsAny", "ContainsAll")
_WHERE_LISTS = {"tags": "tag", "annotations": "class_name", "objects": "objects",
                "scenes": "scenes", "attributes": "attributes"}


class GraphQLRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    variables: dict[str, Any] | None = None
    operationName: str | None = None  # noqa: N815  (GraphQL's own spelling)


def _unsupported(what: str, supported: Any) -> BadRequestError:
    return BadRequestError(f"{what} is not supported; supported: {', '.join(supported)}",
                           field="query")


def _operator(node: dict[str, Any]) -> str:
    operator = node.get("operator")
    return operator.name if isinstance(operator, Enum) else str(operator)


def _values(node: dict[str, Any]) -> list[str]:
    for key in ("valueText", "valueString", "valueTextArray", "valueStringArray"):
        if key in node:
            value = node[key]
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    raise BadRequestError("where: give valueText (or valueTextArray) on our fields",
                          field="query")


def _where(node: Any, into: dict[str, Any]) -> None:
    if not isinstance(node, dict):
        raise BadRequestError("where must be an object {path, operator, value...} or "
                              "{operator: And, operands: [...]}", field="query")
    operator = _operator(node)
    if operator == "And":
        operands = node.get("operands")
        if not isinstance(operands, list):
            raise BadRequestError("where And needs operands: [...]", field="query")
        for operand in operands:
            _where(operand, into)
        return
    if operator not in _WHERE_OPERATORS:
        raise _unsupported(f"where operator {operator!r}", _WHERE_OPERATORS)
    path = node.get("path") or []
    prop = path[0] if isinstance(path, list) and len(path) == 1 else str(path)
    values = _values(node)
    if prop in _WHERE_TEXT and len(values) == 1 and (
        operator == "Equal" or (operator == "Like" and prop == "folder")
    ):
        value = values[0].removesuffix("*") if operator == "Like" else values[0]
        if operator == "Like" and "*" in value:
            raise _unsupported(f"where Like {values[0]!r}", ['a prefix: "/folder/*"'])
        into[_WHERE_TEXT[prop]] = value
    elif prop in _WHERE_LISTS and (
        (operator == "Equal" and len(values) == 1)
        or (operator == "ContainsAll" and (prop == "tags" or len(values) == 1))
        or (operator == "ContainsAny" and (prop != "tags" or len(values) == 1))
    ):
        into[_WHERE_LISTS[prop]] = values
    else:
        raise _unsupported(
            f"where {operator} on {prop!r} with {len(values)} value(s)",
            ["And of: split / batch_id / annotation_job_id Equal", "folder Equal or Like",
             "tags Equal or ContainsAll", "annotations / objects / scenes / attributes "
             "Equal or ContainsAny"],
        )
    if prop in into.get("_seen", set()):
        raise BadRequestError(f"where names {prop!r} twice", field="query")
    into.setdefault("_seen", set()).add(prop)


def _near(args: dict[str, Any], request: dict[str, Any]) -> list[float] | None:
    given = [name for name in ("nearImage", "nearVector", "nearText") if name in args]
    if len(given) > 1:
        raise BadRequestError(f"give one of {', '.join(given)}", field="query")
    if not given:
        return None
    near = args[given[0]]
    if not isinstance(near, dict):
        raise BadRequestError(f"{given[0]} must be an object, e.g. {{image: BASE64}}",
                              field="query")
    vector = None
    if given[0] == "nearImage":
        request["image"] = near.get("image")
    elif given[0] == "nearVector":
        raw = near.get("vector")
        if not isinstance(raw, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw
        ):
            raise BadRequestError("nearVector.vector must be a list of numbers", field="query")
        vector = [float(v) for v in raw]
    else:
        request["prompt"] = ", ".join(str(c) for c in near.get("concepts") or [])
    if "distance" in near and "certainty" in near:
        raise BadRequestError("give distance or certainty, not both", field="query")
    if "distance" in near:
        request["threshold"] = 1.0 - float(near["distance"])
    elif "certainty" in near:
        request["threshold"] = 2.0 * float(near["certainty"]) - 1.0
    if request.get("threshold") is not None and request["threshold"] <= 0:
        request["threshold"] = None  # a floor below every score: no floor
    targets = near.get("targetVectors") or []
    if len(targets) > 1:
        raise _unsupported("more than one target vector", ["one named vector (a model)"])
    if targets:
        request["model"] = targets[0]
    unknown = set(near) - {"image", "vector", "concepts", "distance", "certainty",
                           "targetVectors"}
    if unknown:
        raise _unsupported(f"{given[0]} argument {sorted(unknown)[0]!r}",
                           ["image / vector / concepts", "distance", "certainty",
                            "targetVectors"])
    return vector


def _dataset(workspace: str, class_name: str) -> str:
    datasets = list_datasets(settings(), workspace).datasets
    for dataset in datasets:
        if dataset.name == class_name:
            return str(dataset.id)
    for dataset in datasets:
        if dataset.name.lower() == class_name.lower():
            return str(dataset.id)
    raise NotFoundError(f"class {class_name!r}: no dataset of that name", field="query")


def autocut(distances: list[float], jumps: int) -> int:
    """How many results Weaviate's autocut keeps: the distances are normalised onto
    0..1 against a straight line from first to last, and the list is cut at the
    ``jumps``-th local maximum of that difference."""
    if len(distances) <= 1 or distances[-1] == distances[0]:
        return len(distances)
    step = 1.0 / (len(distances) - 1)
    span = distances[-1] - distances[0]
    diff = [(d - distances[0]) / span - i * step for i, d in enumerate(distances)]
    found = 0
    for i in range(1, len(diff)):
        last = i == len(diff) - 1
        if last and len(diff) > 2:
            peak = diff[i] > diff[i - 1] and diff[i] > diff[i - 2]
        else:
            peak = not last and diff[i] > diff[i - 1] and diff[i] >= diff[i + 1]
        if peak:
            found += 1
            if found >= jumps:
                return i
    return len(distances)


def _selection(fields: list[Field]) -> tuple[list[Field], list[Field]]:
    """The class's property fields and its ``_additional`` fields, checked."""
    props = [f for f in fields if f.name != "_additional"]
    extra = [a for f in fields if f.name == "_additional" for a in f.selections]
    for prop in props:
        if prop.name not in PROPERTIES:
            raise _unsupported(f"property {prop.name!r}", PROPERTIES)
    for item in extra:
        if item.name not in ADDITIONAL:
            raise _unsupported(f"_additional {{ {item.name} }}", ADDITIONAL)
    return props, extra


def _value(result: SearchResult, prop: str) -> Any:
    if prop in ("objects", "scenes", "attributes"):
        return sorted(getattr(result.auto_tags, prop)) if result.auto_tags else []
    value = getattr(result, PROPERTIES[prop])
    if prop == "created" and value is not None:
        return value.isoformat()
    return str(value) if prop == "dataset_id" and value is not None else value


def _object(result: SearchResult, props: list[Field], extra: list[Field]) -> dict[str, Any]:
    distance = round(1.0 - result.score, 6)
    additional = {"id": str(result.id), "distance": distance,
                  "certainty": round(1.0 - distance / 2.0, 6), "vector": result.embedding}
    out: dict[str, Any] = {p.key: _value(result, p.name) for p in props}
    if extra:
        out["_additional"] = {a.key: additional[a.name] for a in extra}
    return out


def _get(workspace: str, node: Field) -> list[dict[str, Any]]:
    unknown = sorted(set(node.args) - set(ARGUMENTS))
    if unknown:
        raise _unsupported(f"{node.name} argument {unknown[0]!r}", ARGUMENTS)
    props, extra = _selection(node.selections)
    wanted = {PROPERTIES[p.name] for p in props}
    if any(a.name == "vector" for a in extra):
        wanted.add("embedding")
    request: dict[str, Any] = {
        "in_dataset": _dataset(workspace, node.name), "fields": sorted(wanted),
        "limit": node.args.get("limit", DEFAULT_LIMIT), "offset": node.args.get("offset", 0),
    }
    vector = _near(node.args, request)
    if "where" in node.args:
        _where(node.args["where"], request)
        request.pop("_seen", None)
    page = run_search(settings(), workspace, SearchRequest.model_validate(request),
                      vector=vector)
    results = page.results
    jumps = node.args.get("autocut", 0)
    if not isinstance(jumps, int) or isinstance(jumps, bool):
        raise BadRequestError("autocut must be an integer (jumps to keep)", field="query")
    if jumps > 0:
        results = results[: autocut([1.0 - r.score for r in results], jumps)]
    return [_object(r, props, extra) for r in results]


@router.post(
    "/v1/graphql", tags=["dialects"],
    summary="Weaviate: the GraphQL Get query (nearImage, nearVector, where, ...)",
    description="A class is a dataset. See docs/api.md, 'Coming from Weaviate', for the "
    "supported subset; anything else answers 400 naming it.",
    responses=responses("{data: {Get: {Class: [...]}}}", 400, 404, 409),
)
def graphql(body: GraphQLRequest, caller: Caller) -> dict[str, Any]:
    top = parse(body.query, body.variables)
    if [f.name for f in top] != ["Get"]:
        raise _unsupported(f"{', '.join(f.name for f in top)}", ["Get"])
    found = {node.key: _get(caller.workspace, node) for node in top[0].selections}
    return {"data": {"Get": found}}
