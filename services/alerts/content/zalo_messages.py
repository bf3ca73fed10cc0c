"""The short forms of a message: the Zalo OA text and the ZNS ``template_data``.

Zalo caps an OA text at 2000 characters and a ZNS parameter at 100, so these forms list as many
dossiers as fit and count the rest (the email carries them all). Built from the display strings
of :mod:`services.alerts.content.views`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.alerts.channels.base import truncate_text
from services.alerts.content.formatting import capitalise, one_line

ZALO_TEXT_LIMIT = 2000  # characters in one Zalo OA text message
ZNS_VALUE_LIMIT = 100  # characters in one ZNS template parameter
ZALO_PROCEDURE_LIMIT = 80
ZALO_LINE_LIMIT = 600  # characters of one line of a digest (a name may be very long)

_ZALO_INTRO = {
    "opened": "",
    "severity": "Mức độ sai lệch đã tăng.",
    "reminder": "Sai lệch vẫn chưa được xác nhận.",
    "escalation": "Báo cáo lãnh đạo: cán bộ phụ trách chưa xác nhận sai lệch.",
    "handover": "Hồ sơ đã được chuyển cho anh/chị xử lý và đang có sai lệch.",
    "resolved": "Sai lệch đã được hệ thống tự động đóng, không cần làm gì thêm.",
    "unreachable": "Cán bộ không nhận được thông báo qua bất kỳ kênh nào.",
}
_ZNS_PREFIX = {
    "opened": "",
    "severity": "Mức độ tăng: ",
    "reminder": "Nhắc lại: ",
    "escalation": "Chưa xác nhận: ",
    "handover": "Chuyển cho anh/chị: ",
    "resolved": "Đã tự động đóng: ",
    "unreachable": "Cán bộ không nhận được tin: ",
}


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


def zalo_alert(purpose: str, subject: str, items: Sequence[Mapping[str, Any]]) -> str:
    """The OA text of an alert: one block per dossier, the unit said once when shared."""
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
        if item["apology_link"]:
            lines.append(f"Mẫu văn bản xin lỗi (mẫu 04, đã điền sẵn): {item['apology_link']}")
        if item["link"]:
            lines.append(f"Xác nhận: {item['link']}")
        blocks.append("\n".join(lines))
    unit = f"Đơn vị: {items[0]['unit_name']}" if one_unit else ""
    header = "\n".join(line for line in (subject, _ZALO_INTRO[purpose], unit) if line)
    return _fit(header, blocks, ZALO_TEXT_LIMIT)


def _zns(values: Mapping[str, str]) -> dict[str, str]:
    """ZNS parameters: one line each, "-" for an empty one, at most 100 characters."""
    return {
        key: truncate_text(one_line(value) or "-", ZNS_VALUE_LIMIT) for key, value in values.items()
    }


def zns_alert(purpose: str, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The ZNS template has room for one dossier: the first, the others counted."""
    first = items[0]
    others = f" (và {len(items) - 1} hồ sơ khác)" if len(items) > 1 else ""
    problem = capitalise(first["summary"])
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


ZALO_DIGEST_TOP = 3  # units, officers, fields, rewritten dossiers or deciding ones a line


def _top(rows: Sequence[Mapping[str, Any]], count: int, noun: str, say: Any) -> str:
    """The first :data:`ZALO_DIGEST_TOP` rows said one way, ``; ``-joined, the others counted
    (``count`` is the table's, which may exceed the rows the content kept)."""
    shown = [say(row) for row in rows[:ZALO_DIGEST_TOP]]
    others = count - len(shown)
    return "; ".join(shown) + (f"; và {others} {noun} khác" if others > 0 else "")


def _late_lines(lateness: Mapping[str, Any]) -> list[str]:
    def group(row: Mapping[str, Any]) -> str:
        return f"{row['label']} {row['hours']} giờ ({row['late']} hồ sơ)"

    received = f" (tiếp nhận {lateness['period']})" if lateness["period"] else ""
    lines = [
        f"Hồ sơ trễ hạn{received}: {lateness['total']}, vượt hạn {lateness['hours']} giờ làm "
        f"việc; chưa xin lỗi: {lateness['without_apology']}; xin lỗi muộn: "
        f"{lateness['late_apology']}."
    ]
    units, people, fields = lateness["units"], lateness["officers"], lateness["fields"]
    if units["rows"]:
        lines.append(
            "Giờ làm việc vượt hạn theo đơn vị: "
            + _top(units["rows"], units["count"], units["noun"], group)
            + "."
        )
    if people["rows"]:
        lines.append(
            "Theo cán bộ: " + _top(people["rows"], people["count"], people["noun"], group) + "."
        )
    if fields["rows"]:
        lines.append(
            "Theo lĩnh vực: "
            + _top(
                fields["rows"],
                fields["count"],
                fields["noun"],
                lambda row: f"{row['label']} {row['late']} hồ sơ",
            )
            + "."
        )
    return lines


def _forecast_lines(forecast: Mapping[str, Any]) -> list[str]:
    lines = []
    for row in forecast["rows"][:ZALO_DIGEST_TOP]:
        line = (
            f"Dự báo đúng hạn tháng {forecast['month']}, {row['unit_name']}: hiện {row['now']}, "
            f"tốt nhất {row['best']}, xấu nhất {row['worst']}. {row['verdict']}"
        )
        deciding = row["deciding"]
        if deciding["rows"]:
            line += " " + _top(
                deciding["rows"],
                deciding["count"],
                "hồ sơ",
                lambda each: f"{each['code']} (hạn {each['due']}, {each['holder']})",
            )
        lines.append(line)
    if forecast["count"] > ZALO_DIGEST_TOP:
        lines.append(f"Dự báo: và {forecast['count'] - ZALO_DIGEST_TOP} đơn vị khác.")
    return lines


def _digest_lines(digest: Mapping[str, Any]) -> list[str]:
    """One unit's digest, most telling first: counts, KPIs, lateness, forecast, rewrites."""
    kpis = "; ".join(
        f"{row['label'][:1].lower()}{row['label'][1:]} {row['value']} "
        f"(mục tiêu {row['target']}){' ' + row['mark'] if row['mark'] else ''}"
        for row in digest["kpis"]
    )
    lines = [
        f"• {digest['unit_name']} – tuần {digest['week']}",
        f"Quá hạn: {digest['late']['count']}",
        f"Chậm xử lý: {digest['stalled']['count']}",
        f"Đã trả nhưng hệ thống chưa cập nhật: {digest['returned_open']['count']}",
    ]
    rewritten = digest["rewritten"]
    if rewritten is not None:
        lines.append(f"Bị sửa ngày: {rewritten['count']}")
    lines += [
        f"Sai lệch khác: {digest['mismatches']['count']}",
        f"Chỉ số: {kpis}.",
        f"Tiếp nhận: {digest['received']}; không có hạn trả: {digest['without_due_date']}.",
    ]
    if digest["lateness"] is not None:
        lines += _late_lines(digest["lateness"])
    if digest["forecast"] is not None:
        lines += _forecast_lines(digest["forecast"])
    if rewritten is not None and rewritten["rows"]:
        lines.append(
            "Hồ sơ bị sửa ngày: "
            + _top(
                rewritten["rows"],
                rewritten["count"],
                "hồ sơ",
                lambda row: f"{row['code']} ({row['change']})",
            )
            + "."
        )
    return [truncate_text(line, ZALO_LINE_LIMIT) for line in lines]


def _pointer(units_left: int) -> str:
    """Where the rest is, when a digest does not fit in one Zalo message."""
    others = f" (cả {units_left} đơn vị khác)" if units_left else ""
    return f"… Xem đầy đủ{others} trong email tổng hợp và trên trang giao ban (doisoat)."


def zalo_digest(subject: str, digests: Sequence[Mapping[str, Any]]) -> str:
    """The OA text of a digest: per unit the counts, KPIs, where the late dossiers' time went,
    the month's forecast and the rewritten dossiers, as many lines as fit; when some do not,
    a pointer to the email and the board ends the text, with the units left out counted."""
    header = f"{subject}\nChi tiết trong email tổng hợp."
    blocks = [_digest_lines(digest) for digest in digests]
    text = header
    for index, lines in enumerate(blocks):
        for number, line in enumerate(lines):
            joined = f"{text}\n\n{line}" if number == 0 else f"{text}\n{line}"
            last = index == len(blocks) - 1 and number == len(lines) - 1
            room = 0 if last else len(_pointer(len(blocks) - index - 1)) + 1
            if len(joined) + room > ZALO_TEXT_LIMIT:
                # Units not begun are counted; the text so far left room for this pointer.
                unshown = len(blocks) - index - (1 if number else 0)
                return truncate_text(f"{text}\n{_pointer(unshown)}", ZALO_TEXT_LIMIT)
            text = joined
    return text


def zns_digest(digests: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A digest in the alert's ZNS template: the first unit's counts as the problem."""
    first = digests[0]
    rewritten = first["rewritten"]
    counts = (
        f"Quá hạn {first['late']['count']}, chậm {first['stalled']['count']}, đã trả chưa "
        f"cập nhật {first['returned_open']['count']}, "
        + (f"sửa ngày {rewritten['count']}, " if rewritten is not None else "")
        + f"sai lệch khác {first['mismatches']['count']}"
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
