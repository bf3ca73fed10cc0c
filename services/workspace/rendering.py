"""Pages rendered from Jinja2 templates, whole or one block of them for htmx.

htmx asks for a block of the same template (``HX-Request``) instead of a second template, so a
page and its partial update cannot drift apart. Every label and format comes from
:mod:`shared.vocabulary`: the words on a page are those of the alerts and the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared import vocabulary

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["moment"] = vocabulary.local_time_text
    env.filters["percent"] = vocabulary.percent_text
    env.filters["number"] = vocabulary.number_text
    env.globals["KIND_LABELS"] = vocabulary.KIND_LABELS
    env.globals["SEVERITY_LABELS"] = vocabulary.SEVERITY_LABELS
    env.globals["STATUS_LABELS"] = vocabulary.DISCREPANCY_STATUS_LABELS
    env.globals["STATUS_NAMES"] = vocabulary.STATUS_NAMES
    env.globals["KPI_TARGETS"] = vocabulary.KPI_TARGETS
    env.globals["KPI_LABELS"] = vocabulary.KPI_LABELS
    return env


def is_htmx(request: Request) -> bool:
    """An htmx request wanting a part of the page (a history restore wants all of it)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole page, or only ``block`` of it when htmx asked (an ``HX-Request``)."""
    compiled = environment().get_template(template)
    values = {"request": request, "signed_in": getattr(request.state, "signed_in", None), **context}
    if block is not None and is_htmx(request):
        render_block = compiled.blocks[block]
        text = "".join(render_block(compiled.new_context(values)))
    else:
        text = compiled.render(values)
    return HTMLResponse(text, status_code=status_code)
