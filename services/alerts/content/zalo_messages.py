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


def zalo_digest(subject: str, digests: Sequence[Mapping[str, Any]]) -> str:
    """The OA text of a digest: counts and KPIs per unit; the tables are in the email."""
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


def zns_digest(digests: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A digest in the alert's ZNS template: the first unit's counts as the problem."""
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
