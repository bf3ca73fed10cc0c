"""Display strings of one stored alert (:func:`item_view`); the weekly digest's are in
:mod:`.digest_views`.

The view models the messages and the acknowledgement page are rendered from. They read the
JSON kept on outbox rows, so they tolerate missing keys: a row written by an older version
still renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.alerts.content.formatting import (
    officer_label,
    sentence_time,
    short_time,
    vn_number,
)
from shared.vocabulary import SEVERITY_LABELS

_RESOLUTION_PREFIX = "Tự động đóng:"


# ---- one alert: shared by messages and the acknowledgement page ----------------------------


def _resolution(content: Mapping[str, Any]) -> str:
    """Why it closed, without the reconciler's "Tự động đóng:" prefix the message repeats."""
    reason = str(content.get("resolution") or "").strip()
    if reason.startswith(_RESOLUTION_PREFIX):
        reason = reason[len(_RESOLUTION_PREFIX) :].strip()
    return reason or "điều kiện sai lệch không còn đúng."


def item_view(
    content: Mapping[str, Any], *, link: str | None = None, apology_link: str | None = None
) -> dict[str, Any]:
    """Display strings of one stored content; tolerant of missing keys (older rows).

    ``link``: the recipient's acknowledgement link; ``apology_link``: where the dossier's
    pre-filled apology (form 04) is downloaded, for an overdue dossier still to apologise for.
    """
    unit_name, unit_code = content.get("unit_name"), content.get("unit_code")
    unit = f"{unit_name} ({unit_code})" if unit_name and unit_code else unit_name or unit_code
    previous = content.get("previous_severity")
    hours = content.get("escalate_after_working_hours")
    return {
        "code": str(content.get("dossier_code") or "(không rõ mã hồ sơ)"),
        "procedure": content.get("procedure_name") or "(chưa rõ thủ tục)",
        "unit": unit or "(chưa rõ đơn vị)",
        "unit_name": str(unit_name or unit_code or "(chưa rõ đơn vị)"),
        "applicant": content.get("applicant"),
        "severity_label": content.get("severity_label")
        or SEVERITY_LABELS.get(content.get("severity") or "", "(không rõ)"),
        "previous_severity_label": SEVERITY_LABELS.get(previous) if previous else None,
        "kind_label": content.get("kind_label") or str(content.get("kind") or ""),
        "summary": str(content.get("summary") or "có sai lệch cần kiểm tra"),
        "problem": str(content.get("problem") or ""),
        "action": str(content.get("action") or ""),
        "since": sentence_time(content.get("since")),
        "since_short": short_time(content.get("since")),
        "status_name": content.get("system_status_name"),
        "due": sentence_time(content["due_at"]) if content.get("due_at") else None,
        "reporter": content.get("officer"),
        "responsible": officer_label(content.get("responsible_name"), content.get("responsible"))
        or "chưa có cán bộ xử lý cụ thể (Bộ phận Một cửa của đơn vị)",
        "after_hours": vn_number(hours) if isinstance(hours, int | float) and hours > 0 else None,
        "unreachable": officer_label(content.get("unreachable_name"), content.get("unreachable")),
        "resolution": _resolution(content),
        "link": link,
        "apology_link": apology_link,
    }
