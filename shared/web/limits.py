"""Request bodies read under a hard size limit: a huge upload is a 413, never a memory spike.

The JSON and CSV endpoints read their bodies here, so a limit and its message are defined once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import HTTPException, Request, status
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from shared.web.errors import MAX_JSON_BODY_BYTES, body_too_large_message

# The largest upload a JSON or CSV endpoint takes (contract §5: over 10 MiB is a 413).
MAX_UPLOAD_BYTES = MAX_JSON_BODY_BYTES


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, body_too_large_message(limit))


CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around an uploaded file


def csv_request_body(description: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an endpoint reading :func:`read_csv_upload`."""
    return {
        "required": True,
        "description": description,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }


async def read_csv_upload(request: Request, limit: int) -> bytes:
    """A CSV file of at most ``limit`` bytes: the multipart field ``file``, or a raw CSV body.

    415 for any other media type, 422 for a broken form or one without ``file``, 413 when the
    body or the file is larger than ``limit``.
    """
    body = await read_body(request, limit + MULTIPART_OVERHEAD_BYTES)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in CSV_MEDIA_TYPES:
        data = body
    elif media_type == "multipart/form-data":
        data = await _multipart_file(request, body, limit)
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Gửi tệp CSV trong trường 'file' (multipart/form-data) hoặc thân yêu cầu với "
            "Content-Type: text/csv. / Send the CSV in the form field 'file' "
            "(multipart/form-data) or as the body with Content-Type: text/csv.",
        )
    if len(data) > limit:
        raise too_large(limit)
    return data


async def _multipart_file(request: Request, body: bytes, limit: int) -> bytes:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        Headers(raw=request.scope["headers"]),
        replay(),
        max_files=4,
        max_fields=16,
        max_part_size=limit + 1,
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"multipart/form-data không hợp lệ. / Invalid multipart body: {error.message}",
        ) from error
    try:
        upload = form.get("file")
        if isinstance(upload, str):
            return upload.encode("utf-8")
        if upload is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "Thiếu trường 'file' chứa tệp CSV. / The form has no field 'file' with the CSV.",
            )
        return await upload.read(limit + 1)
    finally:
        await form.close()
