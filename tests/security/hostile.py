"""Hostile input, shared by its tests: hypothesis strategies for contract envelopes with
fuzzed fields, the check that the parser's answer is total, and the poison messages that once
reached an exception or a 500."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from shared.events import DossierEvent, Reason, Rejection
from tests.factories import BASE_TIME, dossier_code, progress, snapshot

REASONS = frozenset(value for name, value in vars(Reason).items() if name.isupper())
BACKENDS = ("postgresql", "sqlite")
PARSER_EXAMPLES = 600
CONSUMER_MESSAGES = 200
MAX_MESSAGE_BYTES = 4096  # small, so that some fuzzed messages are dead letters for size
FUZZ_SOURCE = "hostile-fuzz"

FUZZ = settings(
    max_examples=PARSER_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


SNAPSHOT_FIELDS = (
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "KenhThucHien",
    "ChuHoSo",
    "SoGiayToChuHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "TrangThaiHoSo",
    "NgayKetThucXuLy",
    "NgayTra",
    "NgayTuChoi",
    "DonViXuLy",
    "HoSoCoThanhPhanSoHoa",
    "DanhSachHoSoBoSung",
    "DanhSachXinLoi",
    "DanhSachGiayToKetQua",
    "TruongKhac",
)
STEP_FIELDS = (
    "MaHoSo",
    "NguoiXuLy",
    "ChucDanh",
    "ThoiDiemXuLy",
    "PhongBanXuLy",
    "NoiDungXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
    "TruongKhac",
)
ENVELOPE_FIELDS = ("event_id", "type", "source", "emitted_at", "data", "extra")


def text_values(*, nul: bool) -> st.SearchStrategy[str]:
    """Any text; ``nul=False`` leaves out U+0000 (see the known failures for why)."""
    if nul:
        return st.text(max_size=40)
    return st.text(st.characters(exclude_characters="\x00"), max_size=40)


def json_values(*, nul: bool) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | text_values(nul=nul)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(text_values(nul=nul), children, max_size=4)
        ),
        max_leaves=12,
    )


def _offset(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _rfc3339(moment: datetime, offset_minutes: int, fraction: bool, lower: bool) -> str:
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if fraction:
        text += f".{moment.microsecond:06d}"
    text += _offset(offset_minutes)
    return text.replace("T", "t").replace("Z", "z") if lower else text


# Mostly plausible years (1900–2999 are accepted), some far outside, years 1 and 9999 included.
_plausible = st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(3010, 12, 31))
_moments = st.one_of(  # three draws in four plausible, so that many envelopes are accepted
    _plausible,
    _plausible,
    _plausible,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
rfc3339_moments = st.builds(
    _rfc3339,
    _moments,
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.booleans(),
    st.booleans(),
)


def _thoi_diem(moment: datetime) -> str:
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


thoi_diem_values = st.one_of(
    _moments.map(_thoi_diem),
    st.from_regex(r"\A[0-9]{14}\Z"),
)


def field_values(field: str, *, nul: bool) -> st.SearchStrategy[Any]:
    """A plausible or hostile value for one contract field."""
    anything = json_values(nul=nul)
    if field in ("NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi"):
        return thoi_diem_values | anything
    if field in ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh"):
        return thoi_diem_values | anything
    if field in ("TrangThaiHoSo", "TrangThai", "KenhThucHien", "HoSoCoThanhPhanSoHoa"):
        return st.integers(-2, 12) | st.floats(0, 11) | anything
    if field in ("MaHoSo", "DonViXuLy"):
        return st.from_regex(r"\A[0-9A-Za-z._-]{1,70}\Z") | anything
    if field in ("DanhSachHoSoBoSung", "DanhSachXinLoi"):
        entry = st.fixed_dictionaries(
            {"NgayYeuCau": thoi_diem_values, "NgayHenTraMoi": thoi_diem_values},
            optional={"LyDo": text_values(nul=nul), "NgayHenTraTruoc": thoi_diem_values},
        )
        return st.lists(entry, max_size=3) | anything
    return text_values(nul=nul) | anything


@st.composite
def fuzzed_envelopes(draw: st.DrawFn, *, nul: bool = True) -> dict[str, Any]:
    """A valid snapshot or step, then a few envelope and data fields deleted or replaced."""
    number = draw(st.integers(0, 9999))
    code = dossier_code(number)
    event_id = draw(st.integers(0, 10**6).map("fuzz-{}".format))
    fields: tuple[str, ...]
    if draw(st.booleans()):
        envelope = snapshot(code, event_id=event_id, emitted_at=BASE_TIME)
        fields = SNAPSHOT_FIELDS
    else:
        envelope = progress(code, event_id=event_id, emitted_at=BASE_TIME, step_at=BASE_TIME)
        fields = STEP_FIELDS
    # A source of its own: the newest-event gauge only moves forward, per source, per process,
    # and fuzzed moments reach year 9998.
    envelope["source"] = FUZZ_SOURCE
    for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)):
        if draw(st.integers(0, 4)) == 0:
            envelope["data"].pop(name, None)
        else:
            envelope["data"][name] = draw(field_values(name, nul=nul))
    for name in draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), unique=True, max_size=2)):
        if draw(st.integers(0, 4)) == 0:
            envelope.pop(name, None)
        elif name == "emitted_at":
            envelope[name] = draw(rfc3339_moments | json_values(nul=nul))
        elif name == "type":
            envelope[name] = draw(
                st.sampled_from(["dossier.snapshot", "dossier.progress"]) | json_values(nul=nul)
            )
        else:
            envelope[name] = draw(json_values(nul=nul))
    return envelope


def encode_json(value: Any) -> bytes:
    """Any JSON value as text (lone surrogates escaped: the parser must refuse them itself)."""
    return json.dumps(value).encode("ascii")


def assert_total(result: Any, key: bytes | None = None) -> None:
    assert isinstance(result, DossierEvent | Rejection), result
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        assert isinstance(result.detail, str)
        return
    assert result.dossier_code == result.data["MaHoSo"]
    assert result.emitted_at.tzinfo is not None
    if key is not None:
        assert key.decode("utf-8", errors="replace") == result.dossier_code


def poison(kind: str) -> dict[str, Any]:
    envelope = snapshot(dossier_code(4), event_id=f"poison-{kind}", emitted_at=BASE_TIME)
    if kind == "year-one":
        envelope["data"]["NgayTiepNhan"] = "00010101000000"
    elif kind == "deep":
        value: Any = 1
        for _ in range(300):
            value = [value]
        envelope["data"]["TruongKhac"] = value
    elif kind == "nul":
        envelope["data"]["TenTTHC"] = "trước\x00sau"
    elif kind == "extreme-emitted-at":
        envelope["emitted_at"] = "9999-12-31T23:59:59-23:59"
    return envelope
