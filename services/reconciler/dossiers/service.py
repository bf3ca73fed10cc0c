"""Read side of one dossier: its stored state, its steps and its whole story, as the API and
the workspace's dossier page show them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Final, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import queries as reconciler_queries
from services.reconciler.reports import service as reports_service
from shared.directory import Directory
from shared.dvcqg import (
    RESCHEDULE_LISTS,
    SNAPSHOT_DATE_FIELDS,
    DueDate,
    agency_of_dossier_code,
    due_date_of,
    parse_thoi_diem,
)
from shared.models import (
    Discrepancy,
    DiscrepancyHistory,
    Dossier,
    Event,
    Officer,
    ProgressStep,
    ReconcileSchedule,
    Unit,
)
from shared.privacy import mask_name
from shared.vocabulary import local_iso


async def get_dossier(connection: AsyncConnection, code: str) -> Dossier | None:
    row = (await connection.execute(select(Dossier).where(Dossier.code == code))).first()
    return None if row is None else Dossier(**row._mapping)


async def progress_of(connection: AsyncConnection, code: str) -> list[dict[str, Any]]:
    """Every step of the dossier in time order, with the fields the procedure system sent."""
    rows = await connection.execute(
        select(ProgressStep.event_id, ProgressStep.emitted_at, Event.data)
        .join(Event, Event.event_id == ProgressStep.event_id)
        .where(ProgressStep.dossier_code == code)
        .order_by(ProgressStep.step_at, ProgressStep.emitted_at, ProgressStep.event_id)
    )
    return [
        {"event_id": event_id, "emitted_at": local_iso(emitted_at), **data}
        for event_id, emitted_at, data in rows.all()
    ]


async def waiting_for_system(connection: AsyncConnection, code: str) -> datetime | None:
    """When the dossier's desk report waits for the system's data: the moment the ingest
    watermark must pass before it is judged (None when nothing waits)."""
    return (
        await connection.execute(
            select(ReconcileSchedule.check_at).where(
                ReconcileSchedule.dossier_code == code,
                ReconcileSchedule.waits_for_watermark.is_(True),
            )
        )
    ).scalar_one_or_none()


# ---- a dossier's whole story (contract §6): the workspace's page and the API read these ------

# Snapshot fields whose changes the story shows, in this order. Other DVCQG fields may carry
# more personal data: their changes are only counted. The ID number is never shown.
STORY_FIELDS: Final = (
    *("TrangThaiHoSo", "NgayHenTra", "DanhSachHoSoBoSung", "DanhSachXinLoi", "NgayKetThucXuLy"),
    *("NgayTra", "NgayTuChoi", "DonViXuLy", "MaTTHC", "TenTTHC", "TenLinhVuc", "KenhThucHien"),
    *("ChuHoSo", "NgayNopHoSo", "NgayTiepNhan", "NoiNopHoSo", "HoSoCoThanhPhanSoHoa"),
    "DanhSachGiayToKetQua",
)
NOT_COMPARED: Final = frozenset({"MaHoSo", "SoGiayToChuHoSo"})
LIST_FIELDS: Final = frozenset({*RESCHEDULE_LISTS, "DanhSachGiayToKetQua"})


class Dated(Protocol):
    """An entry of a timeline: its moment, and what kind of entry it is."""

    source: ClassVar[str]

    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a snapshot that differs from the snapshot before it (by ``emitted_at``).

    Dates are moments, lists their number of entries; the applicant's name masked if asked."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class SnapshotReceived:
    source: ClassVar[str] = "snapshot"

    at: datetime  # emitted_at
    event_id: str
    received_at: datetime  # when doisoat stored it (a late one arrived out of order)
    status: int | None
    first: bool
    changes: tuple[FieldChange, ...]
    other_changes: int  # fields outside STORY_FIELDS that changed


@dataclass(frozen=True, slots=True)
class StepTaken:
    source: ClassVar[str] = "step"

    at: datetime  # ThoiDiemXuLy
    event_id: str
    officer: str  # NguoiXuLy
    officer_name: str | None
    title: str | None  # ChucDanh
    department: str | None  # PhongBanXuLy
    content: str | None  # NoiDungXuLy
    status: int  # TrangThai
    started_at: datetime | None  # NgayBatDau
    allowed_until: datetime | None  # NgayKetThucTheoQuyDinh


@dataclass(frozen=True, slots=True)
class DeskReported:
    source: ClassVar[str] = "desk_report"

    at: datetime  # occurred_at
    report_id: str
    kind: str  # returned | withdrawn
    officer: str
    officer_name: str | None
    unit_code: str
    note: str | None
    channel: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DiscrepancyChanged:
    source: ClassVar[str] = "discrepancy"

    at: datetime
    discrepancy_id: int
    kind: str
    action: str  # opened | severity_changed | handed_over | acknowledged | resolved
    severity: str | None
    actor: str | None  # None: doisoat itself
    actor_name: str | None
    note: str | None


StoryEntry = SnapshotReceived | StepTaken | DeskReported | DiscrepancyChanged


@dataclass(frozen=True, slots=True)
class DossierStory:
    """What the story's header says, and its entries (notifications are the alerts')."""

    code: str
    known_to_system: bool  # a snapshot or a step arrived
    status: int | None
    scope_unit: str  # whose officers may read it: DonViXuLy, else the desk's unit, else prefix
    unit_code: str  # the unit answering for it today (through replaced_by)
    unit_name: str | None
    procedure_code: str | None
    procedure_name: str | None
    field_name: str | None
    applicant: str | None  # masked unless personal data was asked for
    received_at: datetime | None
    due: DueDate
    holder: str | None
    holder_name: str | None
    last_snapshot_at: datetime | None
    waiting_for_system: datetime | None
    discrepancies: list[Any]
    entries: list[StoryEntry]


async def story_of(
    connection: AsyncConnection, code: str, *, directory: Directory, personal_data: bool
) -> DossierStory | None:
    """Everything doisoat knows of dossier ``code`` (None: never heard of it), every lookup by
    the dossier's code. The applicant's ID number is never in it; the name is masked unless
    ``personal_data``."""
    dossier = await get_dossier(connection, code)
    reports = (await reports_service.reports_for(connection, [code]))[code]
    discrepancies = await reconciler_queries.discrepancies_of(connection, code)
    if dossier is None and not reports and not discrepancies:
        return None
    snapshots = await _snapshots(connection, code, personal_data=personal_data)
    steps = await _steps(connection, code)
    history = await _history(connection, code)
    names = await _names(
        connection,
        {dossier.responsible if dossier else None}
        | {step.officer for step in steps}
        | {report.officer for report in reports}
        | {entry.actor for entry in history},
    )
    # As the reconciler assigns it (service._context): the system's unit, else the desk's.
    scope_unit = (
        (dossier.unit_code if dossier else None)
        or (reports[-1].unit_code if reports else None)
        or agency_of_dossier_code(code)
    )
    unit_code = directory.answering_unit(scope_unit) or scope_unit
    snapshot = (dossier.snapshot if dossier else None) or {}
    applicant = snapshot.get("ChuHoSo")
    if isinstance(applicant, str) and not personal_data:
        applicant = mask_name(applicant)
    entries: list[StoryEntry] = [
        *snapshots,
        *(replace(step, officer_name=names.get(step.officer)) for step in steps),
        *(_desk_reported(report, names) for report in reports),
        *(replace(entry, actor_name=names.get(entry.actor or "")) for entry in history),
    ]
    return DossierStory(
        code=code,
        known_to_system=dossier is not None,
        status=dossier.status if dossier else None,
        scope_unit=scope_unit,
        unit_code=unit_code,
        unit_name=await _unit_name(connection, unit_code),
        procedure_code=dossier.procedure_code if dossier else None,
        procedure_name=dossier.procedure_name if dossier else None,
        field_name=dossier.field_name if dossier else None,
        applicant=applicant if isinstance(applicant, str) else None,
        received_at=dossier.received_at if dossier else None,
        due=due_date_of(snapshot),
        holder=dossier.responsible if dossier else None,
        holder_name=names.get(dossier.responsible or "") if dossier else None,
        last_snapshot_at=dossier.snapshot_emitted_at if dossier else None,
        waiting_for_system=await waiting_for_system(connection, code),
        discrepancies=discrepancies,
        entries=entries,
    )


def timeline(*groups: Iterable[Dated], newest_first: bool = True) -> list[Dated]:
    """One timeline of several kinds of entries; ties keep the order the groups were given in
    (facts before what doisoat made of them)."""
    merged = [entry for group in groups for entry in group]
    merged.sort(key=lambda entry: entry.at)  # stable: the groups' order breaks ties
    if newest_first:
        merged.reverse()
    return merged


async def _snapshots(
    connection: AsyncConnection, code: str, *, personal_data: bool
) -> list[SnapshotReceived]:
    rows = await connection.execute(
        select(Event.event_id, Event.emitted_at, Event.ingested_at, Event.data)
        .where(Event.dossier_code == code, Event.type == "dossier.snapshot")
        .order_by(Event.emitted_at, Event.event_id)
    )
    found: list[SnapshotReceived] = []
    previous: dict[str, Any] | None = None
    for event_id, emitted_at, ingested_at, data in rows.all():
        changes, others = _changes(previous or {}, data, personal_data=personal_data)
        status = data.get("TrangThaiHoSo")
        found.append(
            SnapshotReceived(
                at=emitted_at,
                event_id=event_id,
                received_at=ingested_at,
                status=status if isinstance(status, int) else None,
                first=previous is None,
                changes=() if previous is None else changes,
                other_changes=0 if previous is None else others,
            )
        )
        previous = data
    return found


def _changes(
    before: dict[str, Any], after: dict[str, Any], *, personal_data: bool
) -> tuple[tuple[FieldChange, ...], int]:
    shown = tuple(
        FieldChange(
            name,
            _value(name, before.get(name), personal_data),
            _value(name, after.get(name), personal_data),
        )
        for name in STORY_FIELDS
        if before.get(name) != after.get(name)
    )
    others = sum(
        1
        for name in (before.keys() | after.keys()) - NOT_COMPARED - set(STORY_FIELDS)
        if before.get(name) != after.get(name)
    )
    return shown, others


def _value(name: str, value: Any, personal_data: bool) -> Any:
    if value is None:
        return None
    if name in SNAPSHOT_DATE_FIELDS and isinstance(value, str):
        return parse_thoi_diem(value)
    if name in LIST_FIELDS:
        return len(value) if isinstance(value, list) else None
    if name == "ChuHoSo" and isinstance(value, str) and not personal_data:
        return mask_name(value)
    return value


async def _steps(connection: AsyncConnection, code: str) -> list[StepTaken]:
    rows = await connection.execute(
        select(
            ProgressStep.step_at.label("at"),
            ProgressStep.event_id,
            ProgressStep.officer,
            ProgressStep.title,
            ProgressStep.department,
            ProgressStep.content,
            ProgressStep.status,
            ProgressStep.started_at,
            ProgressStep.deadline_at.label("allowed_until"),
        )
        .where(ProgressStep.dossier_code == code)
        .order_by(ProgressStep.step_at, ProgressStep.emitted_at, ProgressStep.event_id)
    )
    return [StepTaken(**row._mapping, officer_name=None) for row in rows.all()]


def _desk_reported(report: reports_service.FieldReportRow, names: dict[str, str]) -> DeskReported:
    return DeskReported(
        at=report.occurred_at,
        report_id=report.report_id,
        kind=report.kind,
        officer=report.officer,
        officer_name=names.get(report.officer),
        unit_code=report.unit_code,
        note=report.note,
        channel=report.channel,
        received_at=report.received_at,
    )


async def _history(connection: AsyncConnection, code: str) -> list[DiscrepancyChanged]:
    rows = await connection.execute(
        select(
            DiscrepancyHistory.at,
            DiscrepancyHistory.discrepancy_id,
            Discrepancy.kind,
            DiscrepancyHistory.action,
            DiscrepancyHistory.severity,
            DiscrepancyHistory.actor,
            DiscrepancyHistory.note,
        )
        .join(Discrepancy, Discrepancy.id == DiscrepancyHistory.discrepancy_id)
        .where(Discrepancy.dossier_code == code)
        .order_by(DiscrepancyHistory.at, DiscrepancyHistory.id)
    )
    return [DiscrepancyChanged(**row._mapping, actor_name=None) for row in rows.all()]


async def _names(connection: AsyncConnection, accounts: set[str | None]) -> dict[str, str]:
    """Officers' full names by account, for those the directory knows."""
    wanted = sorted(account for account in accounts if account)
    if not wanted:
        return {}
    rows = await connection.execute(
        select(Officer.account, Officer.full_name).where(Officer.account.in_(wanted))
    )
    return {account: name for account, name in rows.all()}


async def _unit_name(connection: AsyncConnection, code: str) -> str | None:
    return (
        await connection.execute(select(Unit.name).where(Unit.code == code))
    ).scalar_one_or_none()
