"""What one discrepancy says, in Vietnamese: the ``content`` JSON kept on an outbox row.

:func:`alert_content` turns one discrepancy (plus its dossier and unit name) into every fact a
message needs, already phrased (``summary``, ``problem``, ``action``), so a message rendered
days later says what was true when the row was written. Each kind has its own wording here.

Pure functions, no I/O. Personal data (Nghị định 13/2023/NĐ-CP): the applicant appears only
masked, the identity document number never.

Optional keys the planner may add to a content (all read with defaults by the views):
``escalate_after_working_hours`` (escalation), ``unreachable`` / ``unreachable_name``
(unreachable), ``resolution`` (resolved), ``responsible_name``, ``previous_severity``.
``apology_draft_path`` is set for ``OVERDUE_NO_APOLOGY`` only: the path of the dossier's
pre-filled form 04, which the rendered message links to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.alerts.content.formatting import (
    capitalise,
    iso,
    sentence_time,
    status_name,
    vn_number,
)
from services.reconciler.forms.links import apology_draft_path
from shared.dvcqg import Status
from shared.privacy import mask_name
from shared.vocabulary import (
    DESK_KINDS,
    DUE_KINDS,
    KIND_LABELS,
    REWRITTEN_FIELD_LABELS,
    SEVERITY_LABELS,
    STATUS_NAMES,
    Kind,
)

WORKING_DAY_MINUTES = 480  # the legal working day (8 h) deadlines are counted in


def _span(minutes: Any, *, days: bool) -> str:
    """A rule's window in working days when whole days (stall rules), else working hours."""
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return "thời hạn quy định"
    if days and minutes > 0 and minutes % WORKING_DAY_MINUTES == 0:
        return f"{vn_number(minutes / WORKING_DAY_MINUTES)} ngày làm việc"
    return f"{vn_number(minutes / 60)} giờ làm việc"


def _duration(minutes: Any) -> str:
    """``2 giờ 5 phút``: how far apart two moments are, sign dropped."""
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return ""
    total = round(abs(minutes))
    hours, rest = divmod(total, 60)
    if hours and rest:
        return f"{hours} giờ {rest} phút"
    return f"{hours} giờ" if hours else f"{rest} phút"


def mask_applicant(full_name: Any) -> str | None:
    """:func:`mask_name`, and a two-word name loses its given name too (else it stays whole)."""
    if not isinstance(full_name, str) or not full_name.split():
        return None
    parts = full_name.split()
    if len(parts) == 2:
        return f"{parts[0]} {parts[1][0]}."
    return mask_name(full_name)


# ---- one discrepancy -----------------------------------------------------------------------


def _still(status: Any) -> str:
    """What the system still says, phrased to follow "hệ thống vẫn"."""
    return "đang xử lý" if status == Status.PROCESSING else f"ở trạng thái {status_name(status)}"


def _returned_but_open(f: Mapping[str, Any]) -> tuple[str, str, str]:
    status, when = f["system_status"], sentence_time(f["occurred_at"])
    if f["desk_kind"] == "withdrawn":
        return (
            f"đã được rút nhưng hệ thống vẫn {_still(status)}",
            f"Bộ phận Một cửa ghi nhận công dân rút hồ sơ lúc {when} nhưng hệ "
            f"thống vẫn ở trạng thái {status_name(status)}.",
            "Cập nhật trạng thái Công dân yêu cầu rút hồ sơ trên hệ thống.",
        )
    return (
        f"đã trả kết quả nhưng hệ thống vẫn {_still(status)}",
        f"Bộ phận Một cửa đã trả kết quả cho công dân lúc {when} nhưng hệ "
        f"thống vẫn ở trạng thái {status_name(status)}.",
        "Cập nhật trạng thái Đã trả kết quả trên hệ thống.",
    )


def _time_mismatch(f: Mapping[str, Any]) -> tuple[str, str, str]:
    details = f["details"]
    reasons = details.get("reasons") or []
    parts = []
    if "returned_at_differs" in reasons:
        parts.append(
            "trên hệ thống ngày trả kết quả là "
            f"{sentence_time(details.get('returned_at'))} (lệch "
            f"{_duration(details.get('difference_minutes'))}, quá mức cho phép "
            f"{_duration(details.get('tolerance_minutes'))})"
        )
    if "finished_after_desk_return" in reasons:
        parts.append(
            "ngày kết thúc xử lý trên hệ thống "
            f"({sentence_time(details.get('finished_at'))}) lại sau thời điểm trả"
        )
    if not parts:
        parts.append("thời điểm trên hệ thống không khớp")
    return (
        "có thời điểm trả kết quả trên hệ thống khác sổ theo dõi của Bộ phận Một cửa",
        f"Bộ phận Một cửa trả kết quả lúc {sentence_time(f['occurred_at'])}, "
        f"nhưng {'; '.join(parts)}.",
        "Sửa ngày trả kết quả và ngày kết thúc xử lý trên hệ thống cho khớp với sổ theo dõi "
        "hồ sơ (nếu sổ ghi sai, đề nghị Bộ phận Một cửa sửa sổ).",
    )


def _status_conflict(f: Mapping[str, Any]) -> tuple[str, str, str]:
    name, when = status_name(f["system_status"]), sentence_time(f["occurred_at"])
    action = (
        "Đối chiếu với Bộ phận Một cửa và sửa trạng thái trên hệ thống (hoặc sổ theo dõi hồ "
        "sơ) cho đúng thực tế."
    )
    if f["desk_kind"] == "withdrawn":
        return (
            f"đã được rút nhưng hệ thống ghi {name}",
            f"Bộ phận Một cửa ghi nhận công dân rút hồ sơ lúc {when} nhưng hệ "
            f"thống ghi trạng thái {name}.",
            action,
        )
    return (
        f"đã trả kết quả nhưng hệ thống ghi {name}",
        f"Bộ phận Một cửa đã trả kết quả cho công dân lúc {when} nhưng hệ "
        f"thống ghi trạng thái {name}.",
        action,
    )


def _not_in_system(f: Mapping[str, Any]) -> tuple[str, str, str]:
    done = "ghi nhận công dân rút" if f["desk_kind"] == "withdrawn" else "đã trả kết quả"
    return (
        "chưa có trên hệ thống thông tin giải quyết TTHC",
        f"Bộ phận Một cửa {done} hồ sơ này lúc {sentence_time(f['occurred_at'])} nhưng hồ "
        "sơ chưa có trên hệ thống thông tin giải quyết TTHC.",
        "Đồng bộ hồ sơ lên hệ thống thông tin giải quyết TTHC.",
    )


def _overdue(f: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        "đã quá hạn trả kết quả, chưa có văn bản xin lỗi",
        f"Hồ sơ đã quá hạn trả kết quả ({sentence_time(f['due_at'])}) mà chưa có văn bản xin "
        f"lỗi hẹn lại ngày trả; hệ thống vẫn ở trạng thái {status_name(f['system_status'])}.",
        "Gửi văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04).",
    )


def _due_soon(f: Mapping[str, Any]) -> tuple[str, str, str]:
    window = _span(f["details"].get("window_minutes"), days=False)
    return (
        "sắp đến hạn trả kết quả",
        f"Hồ sơ đến hạn trả kết quả lúc {sentence_time(f['due_at'])}, chỉ còn không quá {window}.",
        "Hoàn thành xử lý trước hạn; nếu không kịp, gửi văn bản xin lỗi và hẹn lại ngày trả "
        "kết quả (Mẫu 04).",
    )


def _stalled(f: Mapping[str, Any]) -> tuple[str, str, str]:
    span = _span(f["details"].get("stall_after_minutes"), days=True)
    return (
        f"không có tiến độ xử lý quá {span}",
        "Hồ sơ không có tiến độ xử lý nào kể từ "
        f"{sentence_time(f['last_activity_at'])} (quá {span}); "
        f"hệ thống vẫn ở trạng thái {status_name(f['system_status'])}.",
        "Xử lý tiếp hồ sơ hoặc cập nhật tiến độ trên hệ thống.",
    )


def _dates_rewritten(f: Mapping[str, Any]) -> tuple[str, str, str]:
    details = f["details"]
    field = REWRITTEN_FIELD_LABELS.get(str(details.get("field")), "một ngày của hồ sơ")
    return (
        f"bị sửa {field} trên hệ thống",
        f"{capitalise(field)} trên hệ thống đã bị sửa từ {sentence_time(details.get('before'))} "
        f"(ghi nhận lúc {sentence_time(details.get('before_seen_at'))}) thành "
        f"{sentence_time(details.get('after'))} (lúc {sentence_time(details.get('after_seen_at'))})"
        ", không kèm yêu cầu bổ sung hay văn bản xin lỗi mới nào giải thích: có thể nhằm che việc "
        "trễ hạn.",
        "Đề nghị lãnh đạo kiểm tra lịch sử xử lý, xác định người sửa ngày, khôi phục ngày đúng "
        "và xử lý trách nhiệm theo quy định.",
    )


def _unknown_kind(f: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        "có sai lệch cần kiểm tra",
        f"doisoat ghi nhận sai lệch loại {f['kind']} với hồ sơ này.",
        "Kiểm tra hồ sơ trên hệ thống và đối chiếu với Bộ phận Một cửa.",
    )


# kind → (summary, problem, action); the facts are those alert_content gathers.
_DESCRIBE: dict[str, Callable[[Mapping[str, Any]], tuple[str, str, str]]] = {
    Kind.RETURNED_BUT_OPEN: _returned_but_open,
    Kind.TIME_MISMATCH: _time_mismatch,
    Kind.STATUS_CONFLICT: _status_conflict,
    Kind.NOT_IN_SYSTEM: _not_in_system,
    Kind.OVERDUE_NO_APOLOGY: _overdue,
    Kind.DUE_SOON: _due_soon,
    Kind.STALLED: _stalled,
    Kind.DATES_REWRITTEN: _dates_rewritten,
}


def alert_content(
    *,
    discrepancy: Mapping[str, Any],
    dossier: Mapping[str, Any] | None,
    unit_name: str | None,
) -> dict[str, Any]:
    """The JSON ``content`` of an outbox row about one discrepancy (JSON-serialisable)."""
    details: Mapping[str, Any] = discrepancy.get("details") or {}
    kind = str(discrepancy.get("kind") or "")
    dossier = dossier or {}
    snapshot = dossier.get("snapshot")
    snapshot = snapshot if isinstance(snapshot, Mapping) else dossier
    status = details.get("system_status") if "system_status" in details else None
    if status is None:
        status = dossier.get("status")
    due_at = details.get("due_at")
    if due_at is None and kind in DUE_KINDS:
        due_at = dossier.get("due_at")
    desk = kind in DESK_KINDS
    facts = {
        "kind": kind,
        "details": details,
        "system_status": status,
        "desk_kind": details.get("desk_kind") if desk else None,
        "occurred_at": iso(details.get("occurred_at")) if desk else None,
        "due_at": iso(due_at),
        "last_activity_at": iso(details.get("last_activity_at")),
    }
    summary, problem, action = _DESCRIBE.get(kind, _unknown_kind)(facts)
    raw_id = discrepancy.get("id")
    severity = str(discrepancy.get("severity") or "")
    procedure = dossier.get("procedure_name") or snapshot.get("TenTTHC")
    return {
        "discrepancy_id": int(raw_id) if raw_id is not None else None,
        "dossier_code": discrepancy.get("dossier_code"),
        "procedure_name": procedure if isinstance(procedure, str) else None,
        "unit_code": discrepancy.get("unit_code"),
        "unit_name": unit_name,
        "kind": kind,
        "kind_label": KIND_LABELS.get(kind, kind),
        "severity": severity,
        "severity_label": SEVERITY_LABELS.get(severity, severity),
        "since": iso(discrepancy.get("since")),
        "system_status": status if isinstance(status, int) else None,
        "system_status_name": STATUS_NAMES.get(status) if isinstance(status, int) else None,
        "desk_kind": facts["desk_kind"],
        "occurred_at": facts["occurred_at"],
        "officer": details.get("officer") if desk else None,
        "due_at": facts["due_at"],
        "last_activity_at": facts["last_activity_at"],
        "responsible": discrepancy.get("responsible"),
        "applicant": mask_applicant(snapshot.get("ChuHoSo")),
        "summary": summary,
        "problem": problem,
        "action": action,
        "resolution": discrepancy.get("resolution"),
        "resolved_at": iso(discrepancy.get("resolved_at")),
        "apology_draft_path": _apology_draft(kind, discrepancy.get("dossier_code")),
    }


def _apology_draft(kind: str, code: Any) -> str | None:
    """Where the workspace serves the dossier's pre-filled apology (form 04), for an overdue
    dossier with none yet: a path, the message prefixes the public base URL when sent."""
    if kind != Kind.OVERDUE_NO_APOLOGY or not isinstance(code, str) or not code:
        return None
    return apology_draft_path(code)
