"""What the demo draws: a dossier's plan (its steps and the desk's report) and the whole data set.

A :class:`DossierPlan` knows how to become what the real pipeline consumes: the envelopes of
contract §1 (:meth:`~DossierPlan.envelopes`), the desk's report of contract §2
(:meth:`~DossierPlan.report_document`), and the facts the reconciler will judge
(:meth:`~DossierPlan.facts`), so the generator can check a plan against the real rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from services.app.demo.catalogue import DemoOfficer, DemoUnit, Procedure, department
from services.reconciler.rules import DeskReport, DossierFacts
from shared.clock import VN_TZ
from shared.dvcqg import effective_due_at, format_thoi_diem, optional_thoi_diem
from shared.events import PROGRESS, SNAPSHOT
from shared.vocabulary import Kind

SOURCE: Final = "motcua-demo"  # the envelopes' "source" (contract §1)


@dataclass(slots=True)
class Step:
    """One handling step: what the officer did, and which events the system sends for it."""

    at: datetime
    status: int
    officer: str
    content: str
    title: str = "Chuyên viên"
    snapshot: bool = True  # the system pushes a full snapshot (DongBoHoSoMC) with the step
    progress: bool = True  # … and the step itself (CapNhatTienDoHoSoMC)
    emitted_at: datetime | None = None  # set by DossierPlan.settle


@dataclass(slots=True)
class DossierPlan:
    """One dossier as the procedure system would push it, and what the desk recorded."""

    unit: DemoUnit  # DonViXuLy (may be the merged, old code)
    procedure: Procedure
    channel: int
    digitised: int
    applicant: str
    received_at: datetime | None
    due_at: datetime | None  # NgayHenTra
    steps: list[Step]
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    refused_at: datetime | None = None
    reschedules: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    report: DeskReport | None = None
    report_unit: str = ""
    report_note: str | None = None
    planted: Kind | None = None
    code: str = ""

    @property
    def day(self) -> date:
        first = self.received_at or self.submitted_at or self.steps[0].at
        return first.astimezone(VN_TZ).date()

    def snapshot_data(self, step: Step) -> dict[str, Any]:
        """The DongBoHoSoMC payload as the system knew it at ``step``."""
        at = step.at
        data: dict[str, Any] = {
            "MaHoSo": self.code,
            "MaTTHC": self.procedure.code,
            "TenTTHC": self.procedure.name,
            "TenLinhVuc": self.procedure.field,
            "KenhThucHien": self.channel,
            "ChuHoSo": self.applicant,
            "TrangThaiHoSo": step.status,
            "DonViXuLy": self.unit.code,
            "HoSoCoThanhPhanSoHoa": self.digitised,
        }
        # (field, value, known since): the due date is set at reception, stamps when they happen
        stamps = (
            ("NgayNopHoSo", self.submitted_at, self.submitted_at),
            ("NgayTiepNhan", self.received_at, self.received_at),
            ("NgayHenTra", self.due_at, self.received_at),
            ("NgayKetThucXuLy", self.finished_at, self.finished_at),
            ("NgayTra", self.returned_at, self.returned_at),
            ("NgayTuChoi", self.refused_at, self.refused_at),
        )
        for name, moment, since in stamps:
            if moment is not None and since is not None and since <= at:
                data[name] = format_thoi_diem(moment)
        for list_name, entry in self.reschedules:
            if entry["NgayYeuCau"] <= format_thoi_diem(at):
                data.setdefault(list_name, []).append(entry)
        return data

    def settle(self, rng: random.Random, now: datetime) -> None:
        """Order the steps and give each the moment the system sent it (a short sync lag)."""
        self.steps.sort(key=lambda step: step.at)
        emitted = datetime.min.replace(tzinfo=VN_TZ)
        for step in self.steps:
            lag = timedelta(seconds=rng.randint(2, 90))
            emitted = max(emitted + timedelta(seconds=1), min(step.at + lag, now))
            step.emitted_at = emitted

    def envelopes(self) -> list[dict[str, Any]]:
        """Snapshots and progress steps, in the order they happened (the caller may shuffle)."""
        found: list[dict[str, Any]] = []
        for index, step in enumerate(self.steps, start=1):
            assert step.emitted_at is not None, "settle() first"
            stamp = step.emitted_at.astimezone(VN_TZ).isoformat()
            if step.progress:
                found.append(
                    {
                        "event_id": f"{SOURCE}-{self.code}-p{index:02d}",
                        "type": PROGRESS,
                        "source": SOURCE,
                        "emitted_at": stamp,
                        "data": {
                            "MaHoSo": self.code,
                            "NguoiXuLy": step.officer,
                            "ChucDanh": step.title,
                            "ThoiDiemXuLy": format_thoi_diem(step.at),
                            "PhongBanXuLy": department(self.unit),
                            "NoiDungXuLy": step.content,
                            "TrangThai": step.status,
                        },
                    }
                )
            if step.snapshot:
                found.append(
                    {
                        "event_id": f"{SOURCE}-{self.code}-s{index:02d}",
                        "type": SNAPSHOT,
                        "source": SOURCE,
                        "emitted_at": stamp,
                        "data": self.snapshot_data(step),
                    }
                )
        return found

    def facts(self) -> DossierFacts | None:
        """What the reconciler will see, computed as ingest computes it (seconds, due dates)."""
        if not self.steps:
            return None
        last = next(s for s in reversed(self.steps) if s.snapshot)
        data = self.snapshot_data(last)
        assert last.emitted_at is not None, "settle() first"
        moments = [s.at for s in self.steps if s.progress]
        activity = max([*moments, last.emitted_at])
        return DossierFacts(
            code=self.code or "demo",
            status=data["TrangThaiHoSo"],
            due_at=effective_due_at(data),
            finished_at=optional_thoi_diem(data, "NgayKetThucXuLy"),
            returned_at=optional_thoi_diem(data, "NgayTra"),
            last_activity_at=activity,
            received_at=optional_thoi_diem(data, "NgayTiepNhan"),
        )

    def report_document(self) -> dict[str, Any] | None:
        """The desk's report as contract §2 shapes it (``POST /api/v1/field-reports``)."""
        if self.report is None:
            return None
        document = {
            "report_id": self.report.report_id,
            "dossier_code": self.code,
            "kind": self.report.kind,
            "occurred_at": self.report.occurred_at.astimezone(VN_TZ).isoformat(),
            "officer": self.report.officer,
            "unit_code": self.report_unit,
        }
        if self.report_note:
            document["note"] = self.report_note
        return document


@dataclass(frozen=True, slots=True)
class DemoData:
    """All the demo seeds: the directory, the dossiers, and how many of each kind were planted."""

    units: tuple[DemoUnit, ...]
    officers: list[DemoOfficer]
    plans: list[DossierPlan]  # known to the system (ordered as they will be sent)
    desk_only: list[DossierPlan]  # NOT_IN_SYSTEM: reports of dossiers the system never sent
    planted: dict[str, int]
    first_day: date
    last_day: date
