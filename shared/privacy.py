"""Personal data of applicants (Nghị định 13/2023/NĐ-CP): masked wherever it need not be whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERSONAL_FIELDS = ("ChuHoSo", "SoGiayToChuHoSo")


def mask_name(full_name: str) -> str:
    """Nguyễn Văn A → Nguyễn V. A: family and given names stay, middle names become initials."""
    parts = full_name.split()
    if len(parts) <= 1:
        return (parts[0][0] + ".") if parts else ""
    middle = [part[0] + "." for part in parts[1:-1]]
    return " ".join([parts[0], *middle, parts[-1]])


def mask_document_number(number: str) -> str:
    """Keep only the last three characters of an identity document number."""
    visible = number[-3:] if len(number) > 6 else ""
    return "*" * (len(number) - len(visible)) + visible


def masked_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    masked = dict(snapshot)
    if isinstance(masked.get("ChuHoSo"), str):
        masked["ChuHoSo"] = mask_name(masked["ChuHoSo"])
    if isinstance(masked.get("SoGiayToChuHoSo"), str):
        masked["SoGiayToChuHoSo"] = mask_document_number(masked["SoGiayToChuHoSo"])
    return masked
