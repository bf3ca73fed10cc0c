"""``POST /api/v1/events``: the Kafka envelopes as a JSON array, answered item by item."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, status

from services.ingest import service
from services.ingest.schemas import EventBatchRead, EventResultRead
from shared.auth import Principal
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import agency_of_dossier_code
from shared.events import DossierEvent, Rejection, parse_envelope
from shared.web.deps import ClockDep, EngineDep, require_role
from shared.web.limits import MAX_UPLOAD_BYTES, read_body
from shared.web.openapi import error_responses

MAX_ITEMS = 1000

router = APIRouter(prefix="/api/v1", tags=["ingest"])
SourceKey = Annotated[Principal, Depends(require_role("source"))]


def _units_touched(event: DossierEvent, known_units: dict[str, str | None]) -> list[str]:
    """The units an event writes for: the dossier's stored unit, and a snapshot's new one.

    Checking only the snapshot's own ``DonViXuLy`` would let a key of one commune take over
    another commune's dossier by sending a newer snapshot under its code.
    """
    stored = known_units.get(event.dossier_code)
    if event.is_snapshot:
        return [event.data["DonViXuLy"], *([stored] if stored else [])]
    return [stored or agency_of_dossier_code(event.dossier_code)]


def _event_id_of(item: Any) -> str | None:
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return event_id if isinstance(event_id, str) else None


# Any JSON array: each item is answered on its own (an item that is not an envelope of contract
# §1 is "refused" with the reason), so the document types only the array.
EVENTS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "maxItems": MAX_ITEMS,
                "items": {"description": "a dossier event envelope (contract §1)"},
            }
        }
    },
}


@router.post(
    "/events",
    response_model=EventBatchRead,
    responses=error_responses(
        400,
        413,
        422,
        descriptions={
            400: "Thân yêu cầu không phải JSON / The body is not JSON",
            413: f"Quá {MAX_ITEMS} sự kiện hoặc quá 10 MiB / More than {MAX_ITEMS} events, "
            "or a body over 10 MiB",
            422: "Không phải mảng JSON / Not a JSON array (or a NUL character, or nested "
            "deeper than 32 levels)",
        },
    ),
    openapi_extra={"requestBody": EVENTS_BODY},
)
async def post_events(
    request: Request, principal: SourceKey, engine: EngineDep, clock: ClockDep
) -> EventBatchRead:
    """Store a batch of dossier events; each item is stored, duplicate, stale or refused."""
    started = time.perf_counter()
    body = await read_body(request, MAX_UPLOAD_BYTES)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"JSON không hợp lệ. / Invalid JSON: {error}"
        ) from error
    if not isinstance(document, list):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Cần một mảng JSON các sự kiện. / Expected a JSON array of event envelopes.",
        )
    if len(document) > MAX_ITEMS:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Tối đa {MAX_ITEMS} sự kiện mỗi lần gửi. / At most {MAX_ITEMS} events per request.",
        )
    parsed: list[DossierEvent | Rejection] = [parse_envelope(item) for item in document]

    async with unit_of_work(engine, "http_events") as connection:
        directory = await load_directory(connection)
        codes = [item.dossier_code for item in parsed if isinstance(item, DossierEvent)]
        known_units = await service.known_units_of(connection, codes)
        accepted: list[DossierEvent] = []
        for position, item in enumerate(parsed):
            if isinstance(item, Rejection):
                continue
            outside = [
                unit
                for unit in _units_touched(item, known_units)
                if not principal.may_act_for(unit, directory)
            ]
            if outside:
                parsed[position] = Rejection(
                    "forbidden_unit", f"the key does not cover unit {outside[0]!r}"
                )
            else:
                accepted.append(item)
        result = await service.store_events(connection, accepted, now=clock())
    if result.touched_dossiers:
        request.app.state.on_new_facts()

    answers: list[EventResultRead] = []
    seen: set[str] = set()
    for raw, item in zip(document, parsed, strict=True):
        if isinstance(item, Rejection):
            answers.append(
                EventResultRead(event_id=_event_id_of(raw), outcome="refused", reason=str(item))
            )
            continue
        outcome = "duplicate" if item.event_id in seen else result.outcomes[item.event_id]
        seen.add(item.event_id)
        answers.append(EventResultRead(event_id=item.event_id, outcome=outcome))
    service.record_batch(
        result,
        transport="http",
        size=len(document),
        seconds=time.perf_counter() - started,
        refused=sum(isinstance(item, Rejection) for item in parsed),
    )
    return EventBatchRead(results=answers)
