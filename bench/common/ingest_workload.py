"""The ingest benchmark's workload: contract envelopes of snapshots and progress steps for
some dossiers, with redelivered duplicates and snapshots delivered after newer ones."""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

SOURCE = "motcua-tinh"
BASE_TIME = datetime(2024, 9, 2, 7, 30)  # naive, Asia/Ho_Chi_Minh wall time

UNITS = [f"000.{a:02d}.{b:02d}.H08" for a in (0, 1, 2, 3) for b in range(10, 20)]
PROCEDURES = [
    ("1.004227", "Đăng ký biến động quyền sử dụng đất", "G09-TN01", "Đất đai", 7),
    ("1.001612", "Cấp giấy chứng nhận đăng ký hộ kinh doanh", "G09-KH02", "Thành lập hộ KD", 3),
    ("2.000908", "Chứng thực bản sao từ bản chính", "G09-TP05", "Chứng thực", 1),
    ("1.000894", "Đăng ký khai sinh", "G09-TP01", "Hộ tịch", 1),
    ("1.010733", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "G09-XD03", "Xây dựng", 15),
    ("2.001711", "Cấp đổi giấy phép lái xe", "G09-GT01", "Đường bộ", 5),
]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Võ Minh Đức"]
DEPARTMENTS = [
    "Bộ phận tiếp nhận và trả kết quả",
    "Chi nhánh Văn phòng đăng ký đất đai",
    "Phòng Tư pháp",
    "Phòng Kinh tế - Hạ tầng",
]
STEP_TEXTS = ["Tiếp nhận hồ sơ", "Thẩm định hồ sơ", "Trình ký", "Phê duyệt", "Chuyển trả kết quả"]
#: Status paths of a dossier's snapshots (DVCQG ``TrangThaiHoSo``) and their weights.
PATHS: list[tuple[tuple[int, ...], int]] = [
    ((2, 4, 9, 10), 45),
    ((2, 5, 9, 10), 15),
    ((2, 4, 5, 9), 10),
    ((2, 4, 9), 15),
    ((2, 4, 5), 10),
    ((4, 9, 10), 5),
]
DUPLICATE_SHARE = 0.01
OUT_OF_ORDER_SHARE = 0.03


@dataclass
class Workload:
    messages: list[tuple[bytes, bytes]]
    dossiers: int
    snapshots: int
    steps: int
    duplicates: int
    out_of_order: int
    payload_bytes: int

    @property
    def unique(self) -> int:
        return self.snapshots + self.steps


class _Clock:
    """Moments as whole seconds after :data:`BASE_TIME`, formatted from lookup tables.

    ``strftime`` on ~700,000 moments took longer than producing the whole topic.
    """

    DAY = 86_400

    def __init__(self) -> None:
        self._days: dict[int, tuple[str, str]] = {}
        self._compact = [
            f"{h:02d}{m:02d}{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]
        self._iso = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

    def _day(self, day: int) -> tuple[str, str]:
        known = self._days.get(day)
        if known is None:
            date = BASE_TIME + timedelta(days=day)
            known = self._days[day] = (date.strftime("%Y%m%d"), date.strftime("%Y-%m-%dT"))
        return known

    def thoi_diem(self, seconds: int) -> str:
        """``yyyyMMddHHmmss`` (UTC+7), the DVCQG date format."""
        day, rest = divmod(seconds + self._base_seconds, self.DAY)
        return self._day(day)[0] + self._compact[rest]

    def rfc3339(self, seconds: int) -> str:
        day, rest = divmod(seconds + self._base_seconds, self.DAY)
        return self._day(day)[1] + self._iso[rest] + "+07:00"

    _base_seconds = BASE_TIME.hour * 3_600 + BASE_TIME.minute * 60 + BASE_TIME.second


def generate(total: int, dossiers: int, seed: int) -> Workload:
    """``total`` messages over ``dossiers`` dossiers, interleaved by emission time."""
    gc.disable()  # hundreds of thousands of live tuples: the cyclic GC would rescan them often
    try:
        return _generate(total, dossiers, seed)
    finally:
        gc.enable()


def _generate(total: int, dossiers: int, seed: int) -> Workload:
    rng = random.Random(seed)
    clock = _Clock()
    fmt = clock.thoi_diem
    duplicates = int(total * DUPLICATE_SHARE)
    base = total - duplicates
    per, extra = divmod(base, dossiers)
    officers = {unit: [f"canbo{k:02d}.{unit[4:9]}" for k in range(8)] for unit in UNITS}
    paths = [path for path, _ in PATHS]
    weights = [weight for _, weight in PATHS]
    stream: list[tuple[float, bytes, bytes]] = []
    snapshots = steps = out_of_order = 0
    hour, day = 3_600, 86_400

    for number in range(dossiers):
        budget = per + (1 if number < extra else 0)
        path = rng.choices(paths, weights)[0]
        while len(path) > budget - 1:
            path = path[: budget - 1]
        unit = UNITS[number % len(UNITS)]
        code = f"{unit}-{number:06d}"
        key = code.encode()
        procedure, name, field_code, field_name, days = PROCEDURES[number % len(PROCEDURES)]
        submitted = rng.randrange(0, 60 * day)
        received = submitted + rng.randrange(60, 4 * hour)
        due = received + days * day
        moments = [received]
        for _ in path[1:]:
            moments.append(moments[-1] + rng.randrange(hour, 4 * day))
        data: dict[str, Any] = {
            "MaHoSo": code,
            "MaTTHC": procedure,
            "TenTTHC": name,
            "MaLinhVuc": field_code,
            "TenLinhVuc": field_name,
            "KenhThucHien": rng.choices((1, 2, 3), (45, 50, 5))[0],
            "ChuHoSo": rng.choice(NAMES),
            "NgayNopHoSo": fmt(submitted),
            "NgayTiepNhan": fmt(received),
            "NgayHenTra": fmt(due),
            "DonViXuLy": unit,
            "NoiNopHoSo": unit,
            "HoSoCoThanhPhanSoHoa": rng.choices((0, 1), (2, 8))[0],
        }
        apology = rng.random() < 0.1  # late: an apology letter sets a new date (contract §1)
        sends: list[tuple[float, bytes, bytes]] = []
        for index, (status, moment) in enumerate(zip(path, moments, strict=True)):
            data = dict(data, TrangThaiHoSo=status)
            if apology and index == 2:
                data["DanhSachXinLoi"] = [
                    {
                        "NgayYeuCau": fmt(due - 4 * hour),
                        "NgayHenTraTruoc": fmt(due),
                        "NgayHenTraMoi": fmt(due + 3 * day),
                        "LyDo": "Chờ ý kiến phối hợp của cơ quan liên quan",
                    }
                ]
            if status == 5:
                data["DanhSachHoSoBoSung"] = [
                    {
                        "NgayYeuCau": fmt(moment),
                        "NgayHenTraTruoc": fmt(due),
                        "NgayHenTraMoi": fmt(due + 5 * day),
                        "LyDo": "Bổ sung bản sao giấy tờ tùy thân",
                    }
                ]
            elif status == 9:
                data["NgayKetThucXuLy"] = fmt(moment)
            elif status == 10:
                data["NgayTra"] = fmt(moment)
                data["DanhSachGiayToKetQua"] = [
                    {"MaGiayToKetQua": f"KQ-{number:06d}", "DuongDanTepTinKetQua": f"kq/{code}.pdf"}
                ]
            emitted = moment + rng.randrange(1, 30)
            envelope = {
                "event_id": f"igate-{number:06d}-s{index + 1}",
                "type": "dossier.snapshot",
                "source": SOURCE,
                "emitted_at": clock.rfc3339(emitted),
                "data": data,
            }
            sends.append((emitted, key, orjson.dumps(envelope)))
        if len(sends) >= 2 and rng.random() < OUT_OF_ORDER_SHARE:
            # an older snapshot delivered after a newer one: it must not overwrite it
            index = rng.randrange(len(sends) - 1)
            _, key_, value = sends[index]
            sends[index] = (sends[index + 1][0] + rng.uniform(1, 600), key_, value)
            out_of_order += 1
        snapshots += len(path)
        dossier_officers = rng.sample(officers[unit], 3)
        span = moments[-1] - received + hour
        count = budget - len(path)
        for index in range(count):
            moment = received + span * (index + 1) // count
            emitted = moment + rng.randrange(1, 30)
            envelope = {
                "event_id": f"igate-{number:06d}-p{index + 1}",
                "type": "dossier.progress",
                "source": SOURCE,
                "emitted_at": clock.rfc3339(emitted),
                "data": {
                    "MaHoSo": code,
                    "NguoiXuLy": dossier_officers[index % 3],
                    "ChucDanh": "Chuyên viên",
                    "ThoiDiemXuLy": fmt(moment),
                    "PhongBanXuLy": DEPARTMENTS[index % len(DEPARTMENTS)],
                    "NoiDungXuLy": STEP_TEXTS[index % len(STEP_TEXTS)],
                    "TrangThai": 4,
                    "NgayBatDau": fmt(moment),
                    "NgayKetThucTheoQuyDinh": fmt(due),
                },
            }
            # steps arrive with some jitter, so they are out of order among themselves too
            sends.append((emitted + rng.uniform(0, 900), key, orjson.dumps(envelope)))
        steps += count
        stream.extend(sends)
    for index in rng.sample(range(len(stream)), duplicates):
        order, key, value = stream[index]  # redelivered verbatim, some time later
        stream.append((order + rng.uniform(60, 86_400), key, value))
    stream.sort(key=lambda item: item[0])
    messages = [(key, value) for _, key, value in stream]
    return Workload(
        messages=messages,
        dossiers=dossiers,
        snapshots=snapshots,
        steps=steps,
        duplicates=duplicates,
        out_of_order=out_of_order,
        payload_bytes=sum(len(value) for _, value in messages),
    )
