"""Display strings of stored contents: one alert (:func:`item_view`) and one weekly digest.

The view models the messages and the acknowledgement page are rendered from. They read the
JSON kept on outbox rows, so they tolerate missing keys: a row written by an older version
still renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from services.alerts.content.formatting import (
    sentence_time,
    short_time,
    status_name,
    vn_number,
)
from shared.vocabulary import KIND_LABELS, KPI_LABELS, KPI_TARGETS, SEVERITY_LABELS

DIGEST_TABLE_ROWS = 100  # rows per digest table; the rest are counted

_RESOLUTION_PREFIX = "Tự động đóng:"


# ---- one alert: shared by messages and the acknowledgement page ----------------------------


def _officer(name: Any, account: Any) -> str | None:
    """``Name (account)``: the name for people, the account to find them in the directory."""
    if name and account and name != account:
        return f"{name} ({account})"
    return str(name or account) if (name or account) else None


def _resolution(content: Mapping[str, Any]) -> str:
    """Why it closed, without the reconciler's "Tự động đóng:" prefix the message repeats."""
    reason = str(content.get("resolution") or "").strip()
    if reason.startswith(_RESOLUTION_PREFIX):
        reason = reason[len(_RESOLUTION_PREFIX) :].strip()
    return reason or "điều kiện sai lệch không còn đúng."


def item_view(content: Mapping[str, Any], *, link: str | None = None) -> dict[str, Any]:
    """Display strings of one stored content; tolerant of missing keys (older rows)."""
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
        "responsible": _officer(content.get("responsible_name"), content.get("responsible"))
        or "chưa có cán bộ xử lý cụ thể (Bộ phận Một cửa của đơn vị)",
        "after_hours": vn_number(hours) if isinstance(hours, int | float) and hours > 0 else None,
        "unreachable": _officer(content.get("unreachable_name"), content.get("unreachable")),
        "resolution": _resolution(content),
        "link": link,
    }


# ---- the weekly digest ---------------------------------------------------------------------


def _week(value: Any) -> tuple[str, date | None]:
    """``2026-W48`` → (``48/2026``, its Monday); anything else is shown as it is."""
    text = str(value or "")
    year, _, week = text.partition("-W")
    if year.isdigit() and week.isdigit():
        try:
            return f"{int(week)}/{year}", date.fromisocalendar(int(year), int(week), 1)
        except ValueError:
            pass
    return text or "(không rõ tuần)", None


def _table(entries: Any, row: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """At most :data:`DIGEST_TABLE_ROWS` rows, and how many were left out."""
    entries = [entry for entry in entries or [] if isinstance(entry, Mapping)]
    return {
        "count": len(entries),
        "rows": [row(entry) for entry in entries[:DIGEST_TABLE_ROWS]],
        "hidden": max(0, len(entries) - DIGEST_TABLE_ROWS),
    }


def _dossier_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the late, stalled or returned-but-open table."""
    status = entry.get("status")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "procedure": entry.get("procedure_name") or "(chưa rõ thủ tục)",
        "due": short_time(entry.get("due_at")) or "—",
        "status": status_name(status) if status is not None else "—",
        "last_activity": short_time(entry.get("last_activity_at")) or "—",
    }


def _mismatch_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the other-mismatches table."""
    kind = str(entry.get("kind") or "")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "kind": KIND_LABELS.get(kind, kind),
        "since": short_time(entry.get("since")) or "—",
    }


def _kpi_rows(kpis: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each KPI against its target; one the digest lacks shows as unknown, not as failed."""
    rows = []
    for key, target in KPI_TARGETS.items():
        raw = kpis.get(key)
        value = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        rows.append(
            {
                "label": KPI_LABELS[key],
                "value": "—" if value is None else f"{vn_number(value)}%",
                "target": f"{target}%",
                "mark": "" if value is None else "✓" if value >= target else "✗",
                "met": "unknown" if value is None else "yes" if value >= target else "no",
            }
        )
    return rows


def _count(value: Any) -> str:
    """A count, or "—" when the digest lacks it (never a misleading 0)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "—"


def digest_view(content: Mapping[str, Any]) -> dict[str, Any]:
    """Display strings of one weekly digest content."""
    week, monday = _week(content.get("week"))
    stored_kpis = content.get("kpis")
    kpis: Mapping[str, Any] = stored_kpis if isinstance(stored_kpis, Mapping) else {}
    unit_name, unit_code = content.get("unit_name"), content.get("unit_code")
    period = ""
    if monday is not None:
        sunday = date.fromordinal(monday.toordinal() + 6)
        period = f"{monday:%d/%m} – {sunday:%d/%m/%Y}"
    return {
        "unit": f"{unit_name} ({unit_code})" if unit_name and unit_code else unit_name or unit_code,
        "unit_name": str(unit_name or unit_code or "(chưa rõ đơn vị)"),
        "week": week,
        "period": period,
        "monday": monday,
        "late": _table(content.get("late"), _dossier_row),
        "stalled": _table(content.get("stalled"), _dossier_row),
        "returned_open": _table(content.get("returned_open"), _dossier_row),
        "mismatches": _table(content.get("mismatches"), _mismatch_row),
        "kpis": _kpi_rows(kpis),
        "received": _count(kpis.get("received")),
        "without_due_date": _count(kpis.get("without_due_date")),
    }
