"""A plain renderer for the dispatcher tests (the service wires the real Vietnamese one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.alerts.channels.base import Message, Recipient


def render(
    purpose: str,
    contents: Sequence[Mapping[str, Any]],
    recipient: Recipient,
    notification_id: str,
    channel: str,
) -> Message:
    """A plain renderer (the real Vietnamese one is wired by the service)."""
    codes = [str(content["code"]) for content in contents]
    return Message(
        notification_id=notification_id,
        recipient=recipient,
        subject=f"[doisoat] {purpose}: {len(codes)} hồ sơ",
        text="Kính gửi " + recipient.full_name + ",\n" + "\n".join(f"- {c}" for c in codes),
        html=None,
        template_data={
            "ma_ho_so": codes[0],
            "ten_thu_tuc": "Cấp giấy chứng nhận quyền sử dụng đất",
            "don_vi": "Văn phòng đăng ký đất đai",
            "van_de": purpose,
            "thoi_diem": "06/11/2024 10:00",
        },
    )
