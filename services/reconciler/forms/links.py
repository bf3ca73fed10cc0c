"""Where the workspace serves a dossier's forms: one place for the routes and for the links to
them (the dossier page, the alerts). Paths only: a message prefixes ``DOISOAT_PUBLIC_BASE_URL``.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

APOLOGY_DRAFT_ROUTE: Final = "/dossiers/{code}/xin-loi.docx"
CONTROL_SHEET_ROUTE: Final = "/dossiers/{code}/phieu-kiem-soat.docx"


def apology_draft_path(code: str) -> str:
    """The path of dossier ``code``'s draft apology (form 04, ``.docx``), e.g.
    ``/dossiers/000.00.12.H08-241021-0001/xin-loi.docx``: a signed-in handler or leader of the
    dossier's unit downloads it; it answers 409 once the dossier is no longer overdue."""
    return APOLOGY_DRAFT_ROUTE.format(code=quote(code, safe=""))


def control_sheet_path(code: str) -> str:
    """The path of dossier ``code``'s control sheet (form 06, ``.docx``)."""
    return CONTROL_SHEET_ROUTE.format(code=quote(code, safe=""))
