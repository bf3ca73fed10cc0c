"""One message for a group of outbox rows of one recipient and channel.

:func:`render` gives the email its subject, plain text and HTML (the Jinja2 templates in
``services/alerts/templates``), and every message its Zalo OA text and ZNS ``template_data``
(so a fallback from OA to ZNS needs no re-rendering). The subject and the opening sentence
depend on why the message is sent (its purpose); the rest comes from the views.

Pure functions, no I/O besides reading the templates once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.alerts.channels.base import Message, Recipient
from services.alerts.content.digest_views import digest_view
from services.alerts.content.formatting import capitalise, one_line
from services.alerts.content.views import item_view
from services.alerts.content.zalo_messages import (
    zalo_alert,
    zalo_digest,
    zns_alert,
    zns_digest,
)
from services.alerts.links import public_url
from shared.vocabulary import SEVERITY_LABELS

PURPOSES = (
    "opened",
    "severity",
    "reminder",
    "escalation",
    "handover",
    "resolved",
    "unreachable",
    "digest",
)
CHANNELS = ("email", "zalo_oa", "zalo_zns")
ACK_PURPOSES = frozenset({"opened", "severity", "reminder", "escalation", "handover"})

_TEMPLATES = Path(__file__).parent.parent / "templates"


# ---- wording by purpose --------------------------------------------------------------------


def _count_suffix(items: Sequence[Mapping[str, Any]]) -> str:
    """`` (2 nghiêm trọng)``: the critical ones stand out in a grouped subject."""
    critical = sum(1 for item in items if item["severity_label"] == SEVERITY_LABELS["critical"])
    return f" ({critical} nghiêm trọng)" if critical else ""


def _distinct(values: Sequence[Any]) -> str:
    """The officers named once each, in order."""
    seen = list(dict.fromkeys(value for value in values if value))
    return ", ".join(seen) if seen else "(không rõ cán bộ)"


def _subject(purpose: str, items: Sequence[Mapping[str, Any]]) -> str:
    """The subject (also the first line of the Zalo text): why, and about which dossier(s)."""
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
            "handover": f"Hồ sơ được chuyển cho anh/chị – {first['severity_label']}: {about}",
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
            "handover": f"{n} hồ sơ có sai lệch được chuyển cho anh/chị{_count_suffix(items)}",
            "resolved": f"{n} sai lệch hồ sơ đã tự động đóng",
            "unreachable": "Không liên lạc được với cán bộ "
            f"{_distinct([item['unreachable'] for item in items])}: {n} sai lệch hồ sơ",
        }
    return one_line(f"[doisoat] {heads[purpose]}")


def _intro(purpose: str, items: Sequence[Mapping[str, Any]]) -> str:
    """The email's opening sentence: what is asked of the reader, by purpose."""
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
    if purpose == "handover":
        dossiers = "Hồ sơ dưới đây" if n == 1 else f"{n} hồ sơ dưới đây"
        return (
            f"{dossiers} đã được chuyển cho anh/chị xử lý và đang có sai lệch giữa hệ thống "
            "thông tin giải quyết TTHC và thực tế. Đề nghị xử lý và bấm liên kết xác nhận:"
        )
    if purpose == "resolved":
        return f"{capitalise(what)} đã được hệ thống tự động đóng. Không cần làm gì thêm."
    officers = _distinct([item["unreachable"] for item in items])
    return (
        f"Không liên lạc được với cán bộ {officers} qua bất kỳ kênh nào (không có email, Zalo "
        f"hay số điện thoại dùng được), nên cán bộ chưa nhận được thông báo về {what}. Đề nghị "
        "đồng chí chỉ đạo xử lý và cập nhật thông tin liên lạc của cán bộ."
    )


def _apology_link(
    purpose: str, content: Mapping[str, Any], public_base_url: str | None
) -> str | None:
    """The pre-filled apology (form 04) of an overdue dossier, while there is one to write:
    a resolved alert no longer links to it (the workspace refuses it once not overdue)."""
    path = content.get("apology_draft_path")
    if purpose == "resolved" or not public_base_url or not isinstance(path, str) or not path:
        return None
    return public_url(public_base_url, path)


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
    """Plain-text templates: never shown as HTML, so nothing to escape."""
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
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
    public_base_url: str | None = None,
) -> Message:
    """One message for a group of outbox rows of one recipient and channel (1..n contents).

    Every message carries a subject and the ZNS ``template_data`` (so a fallback from OA to
    ZNS needs no re-rendering); ``text`` is the email body for ``email`` and the compact
    Zalo text (≤ 2000 characters) otherwise; ``html`` only for ``email``.
    ``public_base_url`` (``DOISOAT_PUBLIC_BASE_URL``) makes the paths a content carries — the
    pre-filled apology of an overdue dossier — into links; without it they are left out.
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
        subject = one_line(f"[doisoat] Tổng hợp tuần {first['week']}: {units}")
        values |= {"subject": subject, "digests": digests}
        template, zalo, zns = "digest", zalo_digest(subject, digests), zns_digest(digests)
    else:
        items = []
        for content in contents:
            ident = content.get("discrepancy_id")
            link = ack_links.get(ident) if purpose in ACK_PURPOSES and ident is not None else None
            items.append(
                item_view(
                    content,
                    link=link,
                    apology_link=_apology_link(purpose, content, public_base_url),
                )
            )
        subject = _subject(purpose, items)
        values |= {"subject": subject, "intro": _intro(purpose, items), "items": items}
        template, zalo, zns = (
            "alert",
            zalo_alert(purpose, subject, items),
            zns_alert(purpose, items),
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
