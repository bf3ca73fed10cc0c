"""What an alert says, in Vietnamese: the stored ``content`` of an outbox row, and its wording.

:func:`alert_content` turns one discrepancy (plus its dossier and unit name) into the JSON kept
on an outbox row: every fact a message needs, already phrased (``problem``, ``action``), so a
message rendered days later says what was true when the row was written. :func:`render` words
one message for a group of rows of one recipient and channel: email (subject, plain text and
HTML from the Jinja2 templates beside this module), a compact Zalo OA text, and the ZNS
``template_data``.

Pure functions, no I/O besides reading the templates once. Personal data (Nghị định
13/2023/NĐ-CP): the applicant appears only masked, the identity document number never.

Optional keys the planner may add to a content (all read with defaults):
``escalate_after_working_hours`` (escalation), ``unreachable`` / ``unreachable_name``
(unreachable), ``resolution`` (resolved), ``responsible_name``, ``previous_severity``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.alerts.channels.base import Message, Recipient, truncate_text
from services.reconciler.rules import Kind
from shared.clock import VN_TZ
from shared.dvcqg import STATUS_NAMES_VI, Status
from shared.privacy import mask_name

PURPOSES = ("opened", "severity", "reminder", "escalation", "resolved", "unreachable", "digest")
CHANNELS = ("email", "zalo_oa", "zalo_zns")
ACK_PURPOSES = frozenset({"opened", "severity", "reminder", "escalation"})
ZALO_TEXT_LIMIT = 2000  # characters in one Zalo OA text message
ZNS_VALUE_LIMIT = 100  # characters in one ZNS template parameter
ZALO_PROCEDURE_LIMIT = 80
DIGEST_TABLE_ROWS = 100  # rows per digest table; the rest are counted
WORKING_DAY_MINUTES = 480  # the legal working day (8 h) deadlines are counted in

SEVERITY_LABELS = {"critical": "Nghiêm trọng", "warning": "Cảnh báo", "info": "Thông tin"}
KIND_LABELS = {
    Kind.RETURNED_BUT_OPEN: "Đã trả kết quả nhưng hệ thống chưa cập nhật",
    Kind.TIME_MISMATCH: "Lệch thời điểm trả kết quả",
    Kind.STATUS_CONFLICT: "Trạng thái trái với thực tế tại Bộ phận Một cửa",
    Kind.NOT_IN_SYSTEM: "Hồ sơ chưa có trên hệ thống",
    Kind.OVERDUE_NO_APOLOGY: "Quá hạn, chưa có văn bản xin lỗi",
    Kind.DUE_SOON: "Sắp đến hạn trả kết quả",
    Kind.STALLED: "Chậm xử lý, không có tiến độ",
}
DISCREPANCY_STATUS_LABELS = {
    "open": "Chưa xác nhận",
    "acknowledged": "Đã xác nhận",
    "resolved": "Đã giải quyết",
}
KPI_TARGETS = {"on_time_pct": 98, "online_pct": 50, "digitised_pct": 80, "in_system_pct": 100}
KPI_LABELS = {
    "on_time_pct": "Giải quyết đúng hạn",
    "online_pct": "Hồ sơ trực tuyến",
    "digitised_pct": "Hồ sơ có thành phần số hóa",
    "in_system_pct": "Hồ sơ Một cửa có trên hệ thống",
}
_DESK_KINDS = frozenset(
    {Kind.RETURNED_BUT_OPEN, Kind.TIME_MISMATCH, Kind.STATUS_CONFLICT, Kind.NOT_IN_SYSTEM}
)
_DUE_KINDS = frozenset({Kind.OVERDUE_NO_APOLOGY, Kind.DUE_SOON, Kind.STALLED})
_RESOLUTION_PREFIX = "Tự động đóng:"
_TEMPLATES = Path(__file__).parent / "templates"


# ---- formatting ----------------------------------------------------------------------------


def _moment(value: Any) -> datetime | None:
    """A datetime or ISO 8601 text → aware, in Vietnam time (no offset means Vietnam time)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(VN_TZ)


def _iso(value: Any) -> str | None:
    moment = _moment(value)
    return None if moment is None else moment.isoformat()


def _at(value: Any) -> str:
    """``09:15 ngày 06/11/2024``: the form used inside sentences."""
    moment = _moment(value)
    return "(không rõ thời điểm)" if moment is None else moment.strftime("%H:%M ngày %d/%m/%Y")


def short_time(value: Any) -> str:
    """``09:15 06/11/2024`` (``HH:mm dd/MM/yyyy``), or "" when unknown."""
    moment = _moment(value)
    return "" if moment is None else moment.strftime("%H:%M %d/%m/%Y")


def _number(value: float) -> str:
    """Vietnamese decimals: ``95,2``, ``8``."""
    text = f"{round(value, 1):.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def _span(minutes: Any, *, days: bool) -> str:
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return "thời hạn quy định"
    if days and minutes > 0 and minutes % WORKING_DAY_MINUTES == 0:
        return f"{_number(minutes / WORKING_DAY_MINUTES)} ngày làm việc"
    return f"{_number(minutes / 60)} giờ làm việc"


def _duration(minutes: Any) -> str:
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return ""
    total = round(abs(minutes))
    hours, rest = divmod(total, 60)
    if hours and rest:
        return f"{hours} giờ {rest} phút"
    return f"{hours} giờ" if hours else f"{rest} phút"


def _status_name(status: Any) -> str:
    name = STATUS_NAMES_VI.get(status) if isinstance(status, int) else None
    return name or "chưa xác định"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


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
    return "đang xử lý" if status == Status.PROCESSING else f"ở trạng thái {_status_name(status)}"


def _returned_but_open(f: Mapping[str, Any]) -> tuple[str, str, str]:
    status = f["system_status"]
    if f["desk_kind"] == "withdrawn":
        return (
            f"đã được rút nhưng hệ thống vẫn {_still(status)}",
            f"Bộ phận Một cửa ghi nhận công dân rút hồ sơ lúc {_at(f['occurred_at'])} nhưng hệ "
            f"thống vẫn ở trạng thái {_status_name(status)}.",
            "Cập nhật trạng thái Công dân yêu cầu rút hồ sơ trên hệ thống.",
        )
    return (
        f"đã trả kết quả nhưng hệ thống vẫn {_still(status)}",
        f"Bộ phận Một cửa đã trả kết quả cho công dân lúc {_at(f['occurred_at'])} nhưng hệ "
        f"thống vẫn ở trạng thái {_status_name(status)}.",
        "Cập nhật trạng thái Đã trả kết quả trên hệ thống.",
    )


def _time_mismatch(f: Mapping[str, Any]) -> tuple[str, str, str]:
    details = f["details"]
    reasons = details.get("reasons") or []
    parts = []
    if "returned_at_differs" in reasons:
        parts.append(
            f"trên hệ thống ngày trả kết quả là {_at(details.get('returned_at'))} (lệch "
            f"{_duration(details.get('difference_minutes'))}, quá mức cho phép "
            f"{_duration(details.get('tolerance_minutes'))})"
        )
    if "finished_after_desk_return" in reasons:
        parts.append(
            f"ngày kết thúc xử lý trên hệ thống ({_at(details.get('finished_at'))}) lại sau "
            "thời điểm trả"
        )
    if not parts:
        parts.append("thời điểm trên hệ thống không khớp")
    return (
        "có thời điểm trả kết quả trên hệ thống khác sổ theo dõi của Bộ phận Một cửa",
        f"Bộ phận Một cửa trả kết quả lúc {_at(f['occurred_at'])}, nhưng {'; '.join(parts)}.",
        "Sửa ngày trả kết quả và ngày kết thúc xử lý trên hệ thống cho khớp với sổ theo dõi "
        "hồ sơ (nếu sổ ghi sai, đề nghị Bộ phận Một cửa sửa sổ).",
    )


def _status_conflict(f: Mapping[str, Any]) -> tuple[str, str, str]:
    name = _status_name(f["system_status"])
    action = (
        "Đối chiếu với Bộ phận Một cửa và sửa trạng thái trên hệ thống (hoặc sổ theo dõi hồ "
        "sơ) cho đúng thực tế."
    )
    if f["desk_kind"] == "withdrawn":
        return (
            f"đã được rút nhưng hệ thống ghi {name}",
            f"Bộ phận Một cửa ghi nhận công dân rút hồ sơ lúc {_at(f['occurred_at'])} nhưng hệ "
            f"thống ghi trạng thái {name}.",
            action,
        )
    return (
        f"đã trả kết quả nhưng hệ thống ghi {name}",
        f"Bộ phận Một cửa đã trả kết quả cho công dân lúc {_at(f['occurred_at'])} nhưng hệ "
        f"thống ghi trạng thái {name}.",
        action,
    )


def _not_in_system(f: Mapping[str, Any]) -> tuple[str, str, str]:
    done = "ghi nhận công dân rút" if f["desk_kind"] == "withdrawn" else "đã trả kết quả"
    return (
        "chưa có trên hệ thống thông tin giải quyết TTHC",
        f"Bộ phận Một cửa {done} hồ sơ này lúc {_at(f['occurred_at'])} nhưng hồ sơ chưa có "
        "trên hệ thống thông tin giải quyết TTHC.",
        "Đồng bộ hồ sơ lên hệ thống thông tin giải quyết TTHC.",
    )


def _overdue(f: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        "đã quá hạn trả kết quả, chưa có văn bản xin lỗi",
        f"Hồ sơ đã quá hạn trả kết quả ({_at(f['due_at'])}) mà chưa có văn bản xin lỗi hẹn "
        f"lại ngày trả; hệ thống vẫn ở trạng thái {_status_name(f['system_status'])}.",
        "Gửi văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04).",
    )


def _due_soon(f: Mapping[str, Any]) -> tuple[str, str, str]:
    window = _span(f["details"].get("window_minutes"), days=False)
    return (
        "sắp đến hạn trả kết quả",
        f"Hồ sơ đến hạn trả kết quả lúc {_at(f['due_at'])}, chỉ còn không quá {window}.",
        "Hoàn thành xử lý trước hạn; nếu không kịp, gửi văn bản xin lỗi và hẹn lại ngày trả "
        "kết quả (Mẫu 04).",
    )


def _stalled(f: Mapping[str, Any]) -> tuple[str, str, str]:
    span = _span(f["details"].get("stall_after_minutes"), days=True)
    return (
        f"không có tiến độ xử lý quá {span}",
        f"Hồ sơ không có tiến độ xử lý nào kể từ {_at(f['last_activity_at'])} (quá {span}); "
        f"hệ thống vẫn ở trạng thái {_status_name(f['system_status'])}.",
        "Xử lý tiếp hồ sơ hoặc cập nhật tiến độ trên hệ thống.",
    )


def _unknown_kind(f: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        "có sai lệch cần kiểm tra",
        f"doisoat ghi nhận sai lệch loại {f['kind']} với hồ sơ này.",
        "Kiểm tra hồ sơ trên hệ thống và đối chiếu với Bộ phận Một cửa.",
    )


_DESCRIBE: dict[str, Callable[[Mapping[str, Any]], tuple[str, str, str]]] = {
    Kind.RETURNED_BUT_OPEN: _returned_but_open,
    Kind.TIME_MISMATCH: _time_mismatch,
    Kind.STATUS_CONFLICT: _status_conflict,
    Kind.NOT_IN_SYSTEM: _not_in_system,
    Kind.OVERDUE_NO_APOLOGY: _overdue,
    Kind.DUE_SOON: _due_soon,
    Kind.STALLED: _stalled,
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
    if due_at is None and kind in _DUE_KINDS:
        due_at = dossier.get("due_at")
    desk = kind in _DESK_KINDS
    facts = {
        "kind": kind,
        "details": details,
        "system_status": status,
        "desk_kind": details.get("desk_kind") if desk else None,
        "occurred_at": _iso(details.get("occurred_at")) if desk else None,
        "due_at": _iso(due_at),
        "last_activity_at": _iso(details.get("last_activity_at")),
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
        "since": _iso(discrepancy.get("since")),
        "system_status": status if isinstance(status, int) else None,
        "system_status_name": STATUS_NAMES_VI.get(status) if isinstance(status, int) else None,
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
        "resolved_at": _iso(discrepancy.get("resolved_at")),
    }


# ---- the view of one content, shared by messages and the acknowledgement page -------------


def _officer(name: Any, account: Any) -> str | None:
    if name and account and name != account:
        return f"{name} ({account})"
    return str(name or account) if (name or account) else None


def _resolution(content: Mapping[str, Any]) -> str:
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
        "since": _at(content.get("since")),
        "since_short": short_time(content.get("since")),
        "status_name": content.get("system_status_name"),
        "due": _at(content["due_at"]) if content.get("due_at") else None,
        "reporter": content.get("officer"),
        "responsible": _officer(content.get("responsible_name"), content.get("responsible"))
        or "chưa có cán bộ xử lý cụ thể (Bộ phận Một cửa của đơn vị)",
        "after_hours": _number(hours) if isinstance(hours, int | float) and hours > 0 else None,
        "unreachable": _officer(content.get("unreachable_name"), content.get("unreachable")),
        "resolution": _resolution(content),
        "link": link,
    }


# ---- wording by purpose --------------------------------------------------------------------


def _count_suffix(items: Sequence[Mapping[str, Any]]) -> str:
    critical = sum(1 for item in items if item["severity_label"] == SEVERITY_LABELS["critical"])
    return f" ({critical} nghiêm trọng)" if critical else ""


def _distinct(values: Sequence[Any]) -> str:
    seen = list(dict.fromkeys(value for value in values if value))
    return ", ".join(seen) if seen else "(không rõ cán bộ)"


def _subject(purpose: str, items: Sequence[Mapping[str, Any]]) -> str:
    first, n = items[0], len(items)
    hours = first["after_hours"]
    waited = f" sau {hours} giờ làm việc" if hours else ""
    if n == 1:
        about = f"hồ sơ {first['code']} {first['summary']}"
        heads = {
            "opened": f"{first['severity_label']}: {about}",
            "severity": f"Mức độ tăng lên {first['severity_label']}: {about}",
            "reminder": f"Nhắc lại – {first['severity_label']}: {about}",
            "escalation": f"Chưa được xác nhận{waited}: {about}",
            "resolved": f"Đã tự động đóng: {about}",
            "unreachable": f"Không liên lạc được với cán bộ {_distinct([first['unreachable']])}"
            f": {about}",
        }
    else:
        heads = {
            "opened": f"{n} sai lệch hồ sơ cần xử lý{_count_suffix(items)}",
            "severity": f"{n} sai lệch hồ sơ tăng mức độ{_count_suffix(items)}",
            "reminder": f"Nhắc lại: {n} sai lệch hồ sơ chưa được xác nhận",
            "escalation": f"{n} sai lệch hồ sơ chưa được xác nhận{waited}",
            "resolved": f"{n} sai lệch hồ sơ đã tự động đóng",
            "unreachable": "Không liên lạc được với cán bộ "
            f"{_distinct([item['unreachable'] for item in items])}: {n} sai lệch hồ sơ",
        }
    return _one_line(f"[doisoat] {heads[purpose]}")


def _intro(purpose: str, items: Sequence[Mapping[str, Any]]) -> str:
    n = len(items)
    what = "sai lệch dưới đây" if n == 1 else f"{n} sai lệch dưới đây"
    if purpose == "opened":
        return (
            f"Hệ thống đối soát hồ sơ TTHC (doisoat) phát hiện {what} giữa hệ thống thông tin "
            "giải quyết TTHC và thực tế, đề nghị xử lý:"
        )
    if purpose == "severity":
        return f"Mức độ của {what} đã tăng lên, đề nghị ưu tiên xử lý:"
    if purpose == "reminder":
        return f"Nhắc lại: {what} vẫn chưa được xác nhận. Đề nghị xử lý và bấm liên kết xác nhận."
    if purpose == "escalation":
        hours = items[0]["after_hours"]
        waited = f"sau {hours} giờ làm việc" if hours else "trong thời hạn quy định"
        return (
            f"Báo cáo lãnh đạo: {what} chưa được cán bộ phụ trách xác nhận {waited}. Đề nghị "
            "đồng chí chỉ đạo xử lý (có thể xác nhận thay bằng liên kết kèm theo)."
        )
    if purpose == "resolved":
        return f"{_capitalise(what)} đã được hệ thống tự động đóng. Không cần làm gì thêm."
    officers = _distinct([item["unreachable"] for item in items])
    return (
        f"Không liên lạc được với cán bộ {officers} qua bất kỳ kênh nào (không có email, Zalo "
        f"hay số điện thoại dùng được), nên cán bộ chưa nhận được thông báo về {what}. Đề nghị "
        "đồng chí chỉ đạo xử lý và cập nhật thông tin liên lạc của cán bộ."
    )


_ZALO_INTRO = {
    "opened": "",
    "severity": "Mức độ sai lệch đã tăng.",
    "reminder": "Sai lệch vẫn chưa được xác nhận.",
    "escalation": "Báo cáo lãnh đạo: cán bộ phụ trách chưa xác nhận sai lệch.",
    "resolved": "Sai lệch đã được hệ thống tự động đóng, không cần làm gì thêm.",
    "unreachable": "Cán bộ không nhận được thông báo qua bất kỳ kênh nào.",
}
_ZNS_PREFIX = {
    "opened": "",
    "severity": "Mức độ tăng: ",
    "reminder": "Nhắc lại: ",
    "escalation": "Chưa xác nhận: ",
    "resolved": "Đã tự động đóng: ",
    "unreachable": "Cán bộ không nhận được tin: ",
}


# ---- templates -----------------------------------------------------------------------------


@cache
def html_environment() -> Environment:
    """HTML templates, always autoescaped (dossier fields come from other systems)."""
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _text_environment() -> Environment:
    return Environment(  # plain text, never shown as HTML
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# ---- Zalo and ZNS --------------------------------------------------------------------------


def _fit(header: str, blocks: Sequence[str], limit: int) -> str:
    """``header`` and as many ``blocks`` as fit in ``limit``, the rest counted at the end."""

    def tail(hidden: int) -> str:
        return f"\n\n… và {hidden} hồ sơ khác (xem email)." if hidden else ""

    for shown in range(len(blocks), 0, -1):
        text = "\n\n".join([header, *blocks[:shown]]) + tail(len(blocks) - shown)
        if len(text) <= limit:
            return text
    end = tail(len(blocks) - 1)
    room = limit - len(header) - len(end) - 2
    if room >= 20:
        return f"{header}\n\n{truncate_text(blocks[0], room)}{end}"
    return truncate_text(f"{header}{end}", limit)


def _zalo_alert(purpose: str, subject: str, items: Sequence[Mapping[str, Any]]) -> str:
    units = {item["unit_name"] for item in items}
    one_unit = len(units) == 1
    blocks = []
    for item in items:
        lines = [
            f"• Hồ sơ {item['code']} – {item['severity_label']}",
            f"Thủ tục: {truncate_text(item['procedure'], ZALO_PROCEDURE_LIMIT)}",
            *([] if one_unit else [f"Đơn vị: {item['unit_name']}"]),
            f"Vấn đề: {item['problem']}",
            f"Từ: {item['since_short']}",
        ]
        if purpose in ("escalation", "unreachable"):
            lines.append(f"Cán bộ phụ trách: {item['responsible']}")
        if purpose == "resolved":
            lines.append(f"Đã tự động đóng: {item['resolution']}")
        else:
            lines.append(f"Cần làm: {item['action']}")
        if item["link"]:
            lines.append(f"Xác nhận: {item['link']}")
        blocks.append("\n".join(lines))
    unit = f"Đơn vị: {items[0]['unit_name']}" if one_unit else ""
    header = "\n".join(line for line in (subject, _ZALO_INTRO[purpose], unit) if line)
    return _fit(header, blocks, ZALO_TEXT_LIMIT)


def _zns(values: Mapping[str, str]) -> dict[str, str]:
    return {
        key: truncate_text(_one_line(value) or "-", ZNS_VALUE_LIMIT)
        for key, value in values.items()
    }


def _zns_alert(purpose: str, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    first = items[0]
    others = f" (và {len(items) - 1} hồ sơ khác)" if len(items) > 1 else ""
    problem = _capitalise(first["summary"])
    van_de = _ZNS_PREFIX[purpose] + problem if _ZNS_PREFIX[purpose] else problem
    if len(van_de) + len(others) > ZNS_VALUE_LIMIT:
        van_de = truncate_text(van_de, ZNS_VALUE_LIMIT - len(others))
    return _zns(
        {
            "ma_ho_so": first["code"],
            "ten_thu_tuc": first["procedure"],
            "don_vi": first["unit_name"],
            "van_de": van_de + others,
            "thoi_diem": first["since_short"],
        }
    )


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
    entries = [entry for entry in entries or [] if isinstance(entry, Mapping)]
    return {
        "count": len(entries),
        "rows": [row(entry) for entry in entries[:DIGEST_TABLE_ROWS]],
        "hidden": max(0, len(entries) - DIGEST_TABLE_ROWS),
    }


def _dossier_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    status = entry.get("status")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "procedure": entry.get("procedure_name") or "(chưa rõ thủ tục)",
        "due": short_time(entry.get("due_at")) or "—",
        "status": _status_name(status) if status is not None else "—",
        "last_activity": short_time(entry.get("last_activity_at")) or "—",
    }


def _mismatch_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(entry.get("kind") or "")
    return {
        "code": str(entry.get("dossier_code") or ""),
        "kind": KIND_LABELS.get(kind, kind),
        "since": short_time(entry.get("since")) or "—",
    }


def _kpi_rows(kpis: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for key, target in KPI_TARGETS.items():
        value = kpis.get(key)
        known = isinstance(value, int | float) and not isinstance(value, bool)
        rows.append(
            {
                "label": KPI_LABELS[key],
                "value": f"{_number(value)}%" if known else "—",
                "target": f"{target}%",
                "mark": ("✓" if value >= target else "✗") if known else "",
                "met": "yes" if known and value >= target else "no" if known else "unknown",
            }
        )
    return rows


def _count(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "—"


def digest_view(content: Mapping[str, Any]) -> dict[str, Any]:
    """Display strings of one weekly digest content."""
    week, monday = _week(content.get("week"))
    kpis = content.get("kpis") if isinstance(content.get("kpis"), Mapping) else {}
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


def _zalo_digest(subject: str, digests: Sequence[Mapping[str, Any]]) -> str:
    blocks = []
    for digest in digests:
        kpis = "; ".join(
            f"{row['label'][:1].lower()}{row['label'][1:]} {row['value']} "
            f"(mục tiêu {row['target']}){' ' + row['mark'] if row['mark'] else ''}"
            for row in digest["kpis"]
        )
        blocks.append(
            "\n".join(
                [
                    f"• {digest['unit_name']} – tuần {digest['week']}",
                    f"Quá hạn: {digest['late']['count']}",
                    f"Chậm xử lý: {digest['stalled']['count']}",
                    f"Đã trả nhưng hệ thống chưa cập nhật: {digest['returned_open']['count']}",
                    f"Sai lệch khác: {digest['mismatches']['count']}",
                    f"Chỉ số: {kpis}.",
                    f"Tiếp nhận: {digest['received']}; không có hạn trả: "
                    f"{digest['without_due_date']}.",
                ]
            )
        )
    return _fit(f"{subject}\nChi tiết trong email tổng hợp.", blocks, ZALO_TEXT_LIMIT)


def _zns_digest(digests: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    first = digests[0]
    counts = (
        f"Quá hạn {first['late']['count']}, chậm {first['stalled']['count']}, đã trả chưa "
        f"cập nhật {first['returned_open']['count']}, sai lệch khác "
        f"{first['mismatches']['count']}"
    )
    monday = first["monday"]
    return _zns(
        {
            "ma_ho_so": f"Tổng hợp tuần {first['week']}",
            "ten_thu_tuc": "Báo cáo tổng hợp hằng tuần",
            "don_vi": first["unit_name"],
            "van_de": counts,
            "thoi_diem": f"00:00 {monday:%d/%m/%Y}" if monday else first["week"],
        }
    )


# ---- one message -----------------------------------------------------------------------------


def render(
    purpose: str,
    contents: Sequence[Mapping[str, Any]],
    *,
    recipient: Recipient,
    notification_id: str,
    ack_links: Mapping[int, str],
    channel: str,
) -> Message:
    """One message for a group of outbox rows of one recipient and channel (1..n contents).

    Every message carries a subject and the ZNS ``template_data`` (so a fallback from OA to
    ZNS needs no re-rendering); ``text`` is the email body for ``email`` and the compact
    Zalo text (≤ 2000 characters) otherwise; ``html`` only for ``email``.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if not contents:
        raise ValueError("a message needs at least one content")
    values: dict[str, Any] = {"recipient_name": recipient.full_name, "purpose": purpose}
    if purpose == "digest":
        digests = [digest_view(content) for content in contents]
        first = digests[0]
        units = first["unit_name"] if len(digests) == 1 else f"{len(digests)} đơn vị"
        subject = _one_line(f"[doisoat] Tổng hợp tuần {first['week']}: {units}")
        values |= {"subject": subject, "digests": digests}
        template, zalo, zns = "digest", _zalo_digest(subject, digests), _zns_digest(digests)
    else:
        items = []
        for content in contents:
            ident = content.get("discrepancy_id")
            link = ack_links.get(ident) if purpose in ACK_PURPOSES and ident is not None else None
            items.append(item_view(content, link=link))
        subject = _subject(purpose, items)
        values |= {"subject": subject, "intro": _intro(purpose, items), "items": items}
        template, zalo, zns = (
            "alert",
            _zalo_alert(purpose, subject, items),
            _zns_alert(purpose, items),
        )
    if channel == "email":
        text = _text_environment().get_template(f"{template}.txt.j2").render(values)
        html: str | None = html_environment().get_template(f"{template}.html.j2").render(values)
    else:
        text, html = zalo, None
    return Message(
        notification_id=notification_id,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html,
        template_data=zns,
    )
