"""Small Vietnamese formatters shared by the wording, the views and the renderers.

Kept in one place so that a moment, a number or a dossier status reads the same in a stored
content, an email, a Zalo text and the acknowledgement page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.clock import VN_TZ
from shared.vocabulary import STATUS_NAMES, local_iso


def moment(value: Any) -> datetime | None:
    """A datetime or ISO 8601 text → aware, in Vietnam time (no offset means Vietnam time)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VN_TZ)
    return parsed.astimezone(VN_TZ)


def iso(value: Any) -> str | None:
    """ISO 8601 in Vietnam time, as stored in a content (JSON has no datetime)."""
    return local_iso(moment(value))


def sentence_time(value: Any) -> str:
    """``09:15 ngày 06/11/2024``: the form used inside sentences."""
    parsed = moment(value)
    return "(không rõ thời điểm)" if parsed is None else parsed.strftime("%H:%M ngày %d/%m/%Y")


def short_time(value: Any) -> str:
    """``09:15 06/11/2024`` (``HH:mm dd/MM/yyyy``), or "" when unknown."""
    parsed = moment(value)
    return "" if parsed is None else parsed.strftime("%H:%M %d/%m/%Y")


def vn_number(value: float) -> str:
    """Vietnamese decimals: ``95,2``, ``8``."""
    text = f"{round(value, 1):.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def status_name(status: Any) -> str:
    """The ``TrangThaiHoSo`` name, or "chưa xác định" for an unknown code."""
    name = STATUS_NAMES.get(status) if isinstance(status, int) else None
    return name or "chưa xác định"


def officer_label(name: Any, account: Any) -> str | None:
    """``Name (account)``: the name for people, the account to find them in the directory."""
    if name and account and name != account:
        return f"{name} ({account})"
    return str(name or account) if (name or account) else None


def percent(value: Any) -> str:
    """``97,3%``, or "—" when there is nothing to count (never a misleading 0)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{vn_number(value)}%"


def one_line(text: str) -> str:
    """Whitespace runs collapsed: subjects and ZNS parameters are single lines."""
    return " ".join(text.split())


def capitalise(text: str) -> str:
    """First letter upper-cased, the rest untouched (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]
