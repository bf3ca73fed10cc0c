"""The OpenAPI document made true to what the service answers, so that a generated client works.

FastAPI documents its own validation answer (``HTTPValidationError``: ``detail`` an array) and
only the success status. doisoat answers every refusal with one body, :class:`ErrorRead`
(:mod:`shared.web.errors`), so :func:`install_openapi` rewrites the document once, when it is
first asked for:

- every error status points at ``ErrorRead``; FastAPI's ``HTTPValidationError`` is gone;
- what the whole app can answer is added to every operation: 422 (a NUL in the path or the
  query, refused by the body guard), 413 for a method with a body (over 10 MiB), 400 where
  FastAPI reads a JSON body (one that is not UTF-8), and for an operation that needs a key (it
  has a ``security`` requirement, see :mod:`shared.web.deps`) 401 with ``WWW-Authenticate``,
  403 and 503;
- an optional query parameter is only ``{"type": "string"}``-like, never ``null``: leaving it
  out is what null means, and ``?to=null`` is the string "null";
- ``style``, ``explode`` and ``allowEmptyValue`` given in a parameter's JSON schema (see
  :func:`documented_as`) move to the parameter, where OpenAPI reads them.

What one route answers besides (404, 409, 415…) it declares itself with
:func:`error_responses` or :func:`html_responses`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from fastapi import FastAPI, params
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field, WithJsonSchema

REF: Final = "#/components/schemas/"
ERROR_REF: Final = {"$ref": f"{REF}ErrorRead"}
_FASTAPI_VALIDATION: Final = (f"{REF}HTTPValidationError", f"{REF}ValidationError")
_BODY_METHODS: Final = frozenset({"post", "put", "patch", "delete"})
_METHODS: Final = frozenset({"get", "head", "options", "trace", *_BODY_METHODS})
_PARAMETER_KEYWORDS: Final = ("style", "explode", "allowEmptyValue")
INSTALLED_MARKER: Final = "true_openapi"
_NOT_TEXT: Final = {400: "Thân yêu cầu không đọc được / The body is not UTF-8 text"}

DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "Yêu cầu không hợp lệ / Bad request",
    401: "Thiếu hoặc sai khóa API / No or unknown API key: send `Authorization: Bearer <key>`",
    403: "Khóa không có quyền / The key's role or units do not allow this",
    404: "Không tìm thấy / Not found",
    409: "Xung đột dữ liệu / Conflicts with what is stored",
    410: "Không còn hiệu lực / Gone",
    413: "Dữ liệu quá lớn / Request body too large (at most 10 MiB)",
    415: "Kiểu dữ liệu không được hỗ trợ / Unsupported media type",
    422: "Dữ liệu không hợp lệ / Invalid request: `errors` says where when the request does "
    "not fit its schema; a NUL character (U+0000) anywhere is refused too",
    503: "Chưa cấu hình khóa API hoặc không đọc được kho khóa / No API keys are configured, "
    "or the key store cannot be read",
}


class ValidationErrorRead(BaseModel):
    """One reason an invalid request was refused, without the input it was given."""

    loc: list[str | int] = Field(description="where: `query`/`path`/`body`, then the names")
    msg: str
    type: str


class ErrorRead(BaseModel):
    """Every refusal doisoat answers in JSON (a 4xx or a 5xx)."""

    detail: str = Field(description="Vietnamese first, then English: `<tiếng Việt> / <English>`")
    errors: list[ValidationErrorRead] = Field(
        default_factory=list,
        description="only on a 422 for a request that does not fit its schema (at most ten)",
    )


def error_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answers :class:`ErrorRead` in JSON."""
    return {
        status: {
            "description": (descriptions or {}).get(status) or DESCRIPTIONS[status],
            "content": {"application/json": {"schema": dict(ERROR_REF)}},
        }
        for status in statuses
    }


def html_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a page: each status answers an HTML page explaining itself."""
    return {
        status: {"description": text, "content": {"text/html": {"schema": {"type": "string"}}}}
        for status, text in descriptions.items()
    }


def comma_separated(values: Iterable[str]) -> WithJsonSchema:
    """Document a query parameter read as ``a,b,c``, each one of ``values``.

    In OpenAPI that is an array serialised ``form`` and not exploded; the router reads the
    string itself, and an empty value is no filter (blanks around items are ignored too).
    """
    return documented_as(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(values)},
            "style": "form",
            "explode": False,
        },
        empty_is_absent=True,
    )


def documented_as(schema: dict[str, Any], *, empty_is_absent: bool = False) -> WithJsonSchema:
    """Document a parameter the router reads and checks itself (as a string) as ``schema``.

    ``empty_is_absent``: the router reads ``?name=`` as if the parameter were left out
    (OpenAPI's ``allowEmptyValue``).
    """
    return WithJsonSchema({**schema, "allowEmptyValue": True} if empty_is_absent else schema)


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at ``/openapi.json``; idempotent."""
    if getattr(app.state, INSTALLED_MARKER, False):
        return
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = make_true(generate(), json_bodies=_json_bodies(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    setattr(app.state, INSTALLED_MARKER, True)


def _json_bodies(app: FastAPI) -> frozenset[tuple[str, str]]:
    """(path, method) of the operations whose JSON body FastAPI itself reads."""
    return frozenset(
        (route.path_format, method.lower())
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path_format is not None
        and route.body_field is not None
        and not isinstance(route.body_field.field_info, params.Form)
        for method in route.methods or ()
    )


def make_true(
    document: dict[str, Any], *, json_bodies: frozenset[tuple[str, str]] = frozenset()
) -> dict[str, Any]:
    """Rewrite FastAPI's ``document`` in place (see the module's docstring) and return it.

    ``json_bodies``: operations whose body FastAPI reads as JSON; they answer 400 to a body
    that is not UTF-8 ("There was an error parsing the body").
    """
    for path, method, operation in _operations(document):
        _describe_errors(method, operation, reads_json=(path, method) in json_bodies)
        for parameter in operation.get("parameters", []):
            _clean_parameter(parameter)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorRead.model_json_schema(ref_template=REF + "{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorRead"] = error_schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if method in _METHODS:
                yield path, method, operation


def _describe_errors(method: str, operation: dict[str, Any], *, reads_json: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for answer in responses.values():
        for media in answer.get("content", {}).values():
            if media.get("schema", {}).get("$ref") in _FASTAPI_VALIDATION:
                media["schema"] = dict(ERROR_REF)
                answer["description"] = DESCRIPTIONS[422]
    statuses = [422]
    if method in _BODY_METHODS:
        statuses.append(413)
    if reads_json:
        statuses.append(400)
    if operation.get("security"):
        statuses += [401, 403, 503]
    for status, answer in error_responses(*statuses, descriptions=_NOT_TEXT).items():
        responses.setdefault(str(status), answer)
    operation["responses"] = responses = dict(sorted(responses.items()))
    unauthorised = responses.get("401")
    if unauthorised is not None and operation.get("security"):
        unauthorised.setdefault("headers", {})["WWW-Authenticate"] = {
            "description": "always `Bearer`",
            "required": True,
            "schema": {"type": "string"},
        }


def _clean_parameter(parameter: dict[str, Any]) -> None:
    schema: dict[str, Any] = parameter.get("schema", {})
    for keyword in _PARAMETER_KEYWORDS:
        if keyword in schema:
            parameter[keyword] = schema.pop(keyword)
    alternatives = schema.get("anyOf")
    if parameter.get("in") != "query" or parameter.get("required") or not alternatives:
        return
    kept = [item for item in alternatives if item != {"type": "null"}]
    if len(kept) == 1 and len(kept) < len(alternatives):
        del schema["anyOf"]
        parameter["schema"] = {**kept[0], **schema}
