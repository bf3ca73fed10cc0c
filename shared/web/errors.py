"""Every refusal answered in both languages, and hostile bodies stopped before the routers.

:func:`install_error_handlers` gives a FastAPI app:
- handlers so that every 4xx ``detail`` is one string, Vietnamese first, then English
  (``"Dữ liệu không hợp lệ. / Invalid request: query.limit: …"``): request validation errors,
  malformed JSON bodies, unknown routes (404), wrong methods (405), and any ``HTTPException``
  raised with an English-only text; messages that are already bilingual pass unchanged;
- :class:`BodyGuardMiddleware`: a body that may be JSON is refused over
  :data:`MAX_JSON_BODY_BYTES` (413), with more than :data:`MAX_JSON_CONTAINERS` arrays and
  objects (413) or nested deeper than :data:`MAX_JSON_DEPTH` (422), before any router parses
  it; form bodies over :data:`MAX_BODY_BYTES` are refused (413). orjson alone reads 1024
  levels but writes only 255, and PostgreSQL's ``jsonb`` and the stdlib ``json`` have limits
  of their own: past those a document that was accepted would fail later, as a 500.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import has_escaped_nul, json_depth
from shared.web.methods import allowed_methods

MAX_JSON_DEPTH: Final = 32
#: Arrays and objects (and, apart, strings) in one JSON body: far above any real batch (1000
#: events of a few hundred each), far below what it takes to keep a core busy for long.
MAX_JSON_CONTAINERS: Final = 1_000_000
#: Any body that may be JSON (all but forms): no endpoint takes more (``POST /events`` and a
#: register sent as ``text/csv`` take 10 MiB, the others less).
MAX_JSON_BODY_BYTES: Final = 10 * 1024 * 1024
#: Any other body (multipart forms, CSV): the largest endpoint limit plus multipart overhead.
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_ERRORS_SHOWN: Final = 10
MAX_MESSAGE_CHARS: Final = 300
INSTALLED_MARKER: Final = "bilingual_error_handlers"

# Media types parsed as forms, never as JSON: their bodies are counted but not inspected.
_FORM_MEDIA_TYPES: Final = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_VIETNAMESE: Final[dict[int, str]] = {
    400: "Yêu cầu không hợp lệ.",
    401: "Chưa xác thực.",
    403: "Không có quyền thực hiện.",
    404: "Không tìm thấy.",
    405: "Phương thức không được hỗ trợ.",
    406: "Không trả lời được theo định dạng yêu cầu.",
    408: "Hết thời gian chờ yêu cầu.",
    409: "Xung đột dữ liệu.",
    410: "Không còn tồn tại.",
    411: "Thiếu độ dài dữ liệu (Content-Length).",
    413: "Dữ liệu gửi lên quá lớn.",
    414: "Đường dẫn quá dài.",
    415: "Kiểu dữ liệu gửi lên không được hỗ trợ.",
    422: "Dữ liệu không hợp lệ.",
    429: "Quá nhiều yêu cầu, vui lòng thử lại sau.",
}


class JsonTooDeepError(ValueError):
    """A JSON document nested deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(too_deep_message(limit))
        self.limit = limit


def too_deep_message(limit: int) -> str:
    return (
        f"Dữ liệu JSON lồng nhau quá sâu (tối đa {limit} cấp). / "
        f"JSON nested too deeply (at most {limit} levels)."
    )


def too_many_containers_message(limit: int) -> str:
    return (
        f"Dữ liệu JSON có quá nhiều mảng, đối tượng hoặc chuỗi (tối đa {limit}). / "
        f"JSON body with more than {limit} arrays and objects, or strings."
    )


def body_too_large_message(limit: int) -> str:
    return f"Dữ liệu gửi lên quá lớn (tối đa {limit} byte). / Request body over {limit} bytes."


def check_json_depth(document: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JsonTooDeepError` when ``document`` is nested deeper than ``limit``."""
    if json_depth(document, stop_after=limit) > limit:
        raise JsonTooDeepError(limit)


# Only quotes and brackets matter to nesting; brackets become +1/-1 steps (signed chars).
_NOT_QUOTES_OR_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")

TOO_DEEP: Final = "too_deep"
TOO_MANY_CONTAINERS: Final = "too_many_containers"


def _brackets_outside_strings(body: bytes) -> bytes:
    """The brackets of a JSON text that are not inside its strings, in order.

    Only two escapes can move a string's end: ``\\\\`` and ``\\"``; drop them (escaped
    backslashes first, as a JSON reader pairs them), keep only quotes and brackets, and every
    other piece between quotes is outside the strings. C-speed bytes operations throughout.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    pieces = body.translate(None, _NOT_QUOTES_OR_BRACKETS).split(b'"')
    return b"".join(pieces[::2])


def inspect_json_body(
    body: bytes, *, max_depth: int = MAX_JSON_DEPTH, max_containers: int = MAX_JSON_CONTAINERS
) -> str | None:
    """Why a request body that may be JSON is refused (:data:`TOO_DEEP`,
    :data:`TOO_MANY_CONTAINERS`), or None.

    Works on the bytes without building the document (building millions of lists costs
    seconds): the brackets outside strings become +1/-1 steps and the deepest point is the
    largest running sum. A body that does not start like a JSON array or object is not this
    check's business: the router answers it with its own message. On valid JSON the answer is
    exact; on a broken body it may say "too deep" where the router would have said "invalid
    JSON", a 4xx either way.
    """
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if start not in (b"[", b"{"):
        return None
    openers = body.count(b"[") + body.count(b"{")
    if openers <= max_depth:
        return None  # fewer openers than levels allowed: cannot be too deep, nor too many
    if body.count(b'"') > 2 * max_containers:
        return TOO_MANY_CONTAINERS  # (so many strings that even splitting them costs)
    brackets = _brackets_outside_strings(body)
    if len(brackets) > 2 * max_containers:
        return TOO_MANY_CONTAINERS
    steps = array("b")
    steps.frombytes(brackets.translate(_STEPS))
    return TOO_DEEP if max(accumulate(steps), default=0) > max_depth else None


def body_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a request body is a JSON document nested deeper than ``limit``."""
    return inspect_json_body(body, max_depth=limit, max_containers=len(body)) == TOO_DEEP


def _bilingual(status_code: int, english: str) -> str:
    vietnamese = _VIETNAMESE.get(
        status_code, "Lỗi máy chủ." if status_code >= 500 else "Yêu cầu không được chấp nhận."
    )
    return f"{vietnamese} / {english}"


def is_bilingual(detail: Any) -> bool:
    """Our own messages read ``"<tiếng Việt> / <English>"``."""
    return isinstance(detail, str) and " / " in detail and not detail.isascii()


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def describe_validation_errors(errors: Sequence[dict[str, Any]]) -> str:
    """``query.limit: Input should be …; path.code: String should match …`` (at most ten)."""
    parts = [
        f"{_location(error.get('loc', ()))}: {_clip(str(error.get('msg', '')))}"
        for error in errors[:MAX_ERRORS_SHOWN]
    ]
    if len(errors) > MAX_ERRORS_SHOWN:
        parts.append(f"(+{len(errors) - MAX_ERRORS_SHOWN} more)")
    return "; ".join(parts)


def _errors_without_input(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The structured errors, without ``input``: never echo a (maybe huge, maybe personal) body."""
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            "msg": _clip(str(error.get("msg", ""))),
            "type": str(error.get("type", "")),
        }
        for error in errors[:MAX_ERRORS_SHOWN]
    ]


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    malformed = [item for item in errors if item.get("type") == "json_invalid"]
    if malformed:
        item = malformed[0]
        position = item.get("loc", ("body", "?"))[-1]
        reason = (item.get("ctx") or {}).get("error", "JSON decode error")
        detail = (
            "Thân yêu cầu không phải JSON hợp lệ. / "
            f"Malformed JSON body: {_clip(str(reason))} (at character {position})."
        )
    else:
        detail = (
            "Dữ liệu không hợp lệ. / Invalid request: " + describe_validation_errors(errors) + "."
        )
    return JSONResponse(
        {"detail": detail, "errors": _errors_without_input(errors)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    headers = getattr(error, "headers", None)
    if error.status_code < 200 or error.status_code in (204, 205, 304):
        return Response(status_code=error.status_code, headers=headers)
    detail: Any = error.detail
    method, path = request.method, _clip(request.url.path, 200)
    if error.status_code == 404 and detail == "Not Found":
        detail = f"Không có đường dẫn {path}. / Not found: no route {method} {path}."
    elif error.status_code == 405 and detail == "Method Not Allowed":
        allowed = allowed_methods(request) or (headers or {}).get("Allow")
        headers = {**(headers or {}), "Allow": allowed} if allowed else headers
        also = f" (allowed: {allowed})" if allowed else ""
        detail = (
            f"Đường dẫn {path} không nhận phương thức {method}. / "
            f"Method {method} is not allowed on {path}{also}."
        )
    elif isinstance(detail, str) and not is_bilingual(detail):
        detail = _bilingual(error.status_code, detail)
    elif not isinstance(detail, str):
        detail = _bilingual(error.status_code, json.dumps(detail, ensure_ascii=False, default=str))
    return JSONResponse({"detail": detail}, status_code=error.status_code, headers=headers)


async def _json_too_deep(request: Request, error: Exception) -> Response:
    limit = error.limit if isinstance(error, JsonTooDeepError) else MAX_JSON_DEPTH
    return JSONResponse(
        {"detail": too_deep_message(limit)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


NUL_MESSAGE: Final = (
    "Dữ liệu chứa ký tự NUL (U+0000), không lưu được. / "
    "The request holds the NUL character (U+0000), which PostgreSQL cannot store."
)


def _is_utf8(body: bytes) -> bool:
    """A NUL byte in UTF-8 is U+0000; in other encodings the route says what is wrong."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _nul_in_target(scope: Scope) -> bool:
    """NUL in the path or the query string (``%00``): no text column can hold it."""
    return (
        b"%00" in scope.get("raw_path", b"")
        or b"%00" in scope.get("query_string", b"")
        or "\x00" in scope.get("path", "")
    )


class BodyGuardMiddleware:
    """Refuse oversized bodies (413) and over-deep JSON bodies (422) before the routers.

    Bodies that may be JSON (any media type but forms, including none and ``text/plain``: the
    events endpoint parses whatever it is sent) are read here, at most
    :data:`MAX_JSON_BODY_BYTES`, checked, and replayed to the app unchanged. Form bodies stream
    through, counted against :data:`MAX_BODY_BYTES`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_depth: int = MAX_JSON_DEPTH,
        max_json_bytes: int = MAX_JSON_BODY_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_containers: int = MAX_JSON_CONTAINERS,
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_containers = max_containers
        self.max_json_bytes = max_json_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _nul_in_target(scope):
            await self._refuse(scope, receive, send, 422, NUL_MESSAGE)
            return
        if scope["type"] != "http" or scope["method"] in _BODYLESS_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", ())
        }
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        is_form = media_type in _FORM_MEDIA_TYPES
        limit = self.max_body_bytes if is_form else self.max_json_bytes
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, 413, body_too_large_message(limit))
            return
        if is_form:
            await self.app(scope, self._counting(receive), send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, 413, body_too_large_message(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if has_escaped_nul(body) or (b"\x00" in body and _is_utf8(body)):
            await self._refuse(scope, receive, send, 422, NUL_MESSAGE)
            return
        refusal = inspect_json_body(
            body, max_depth=self.max_depth, max_containers=self.max_containers
        )
        if refusal == TOO_DEEP:
            await self._refuse(scope, receive, send, 422, too_deep_message(self.max_depth))
            return
        if refusal == TOO_MANY_CONTAINERS:
            too_many = too_many_containers_message(self.max_containers)
            await self._refuse(scope, receive, send, 413, too_many)
            return
        await self.app(scope, _replay(body, receive), send)

    def _counting(self, receive: Receive) -> Receive:
        size = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise HTTPException(413, body_too_large_message(limit))
            return message

        return counted

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status_code: int, detail: str
    ) -> None:
        response = JSONResponse({"detail": detail}, status_code=status_code)
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def install_error_handlers(app: FastAPI, *, max_json_depth: int = MAX_JSON_DEPTH) -> None:
    """Bilingual 4xx answers and the body guard; idempotent (marked on ``app.state``)."""
    if getattr(app.state, INSTALLED_MARKER, False):
        return
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(JsonTooDeepError, _json_too_deep)
    app.add_middleware(BodyGuardMiddleware, max_depth=max_json_depth)
    setattr(app.state, INSTALLED_MARKER, True)
