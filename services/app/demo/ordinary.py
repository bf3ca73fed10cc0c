"""Ordinary demo dossiers: received, handled and returned as most are, none of them a discrepancy.

Each is drawn in one of the outcomes a desk sees (awaiting reception, refused, withdrawn, stopped,
processed and returned, or still open); the generator keeps only those the real rules find
nothing in, so every discrepancy the reconciler reports was planted on purpose.
"""

from __future__ import annotations

from datetime import timedelta

from services.app.demo.catalogue import LAND, DemoUnit
from services.app.demo.drawer import MINUTE, Drawer
from services.app.demo.plans import DossierPlan, Step
from shared.dvcqg import format_thoi_diem


def ordinary(drawer: Drawer, units: list[DemoUnit]) -> DossierPlan | None:
    """A dossier of one of ``units`` received in the period; None when this draw cannot fit."""
    unit = drawer.pick_unit(units)
    procedure = drawer.pick_procedure(unit)
    received = drawer.between(drawer.period_start, drawer.now - 10 * MINUTE)
    if received is None:
        return None
    plan = drawer.start(unit, procedure, received)
    if drawer.chance(0.03):
        plan.due_at = None  # the vendor sent no NgayHenTra: counted apart in the KPIs
    if plan.channel == 2 and drawer.chance(0.02):
        return _awaiting_reception(drawer, plan)
    draw = drawer.rng.random()
    if draw < 0.03:
        return _refused(drawer, plan)
    if draw < 0.05:
        return _withdrawn(drawer, plan)
    if draw < 0.06:
        return _stopped(drawer, plan)
    return _processed(drawer, plan)


def _awaiting_reception(drawer: Drawer, plan: DossierPlan) -> DossierPlan:
    """Submitted online in the last hours, not yet received: no due date yet."""
    submitted = drawer.add(drawer.now, -drawer.uniform(0.5, 5))
    plan.submitted_at = submitted
    plan.received_at = plan.due_at = None
    plan.channel = 2
    plan.steps = [Step(submitted, 1, "dvcqg", "Nộp hồ sơ trực tuyến", progress=False)]
    return plan


def _refused(drawer: Drawer, plan: DossierPlan) -> DossierPlan | None:
    """Refused at reception (not the unit's competence)."""
    at = drawer.add(plan.received_at, drawer.uniform(0.2, 3))  # type: ignore[arg-type]
    if at > drawer.now - 5 * MINUTE:
        return None
    plan.refused_at = at
    content = "Từ chối tiếp nhận: hồ sơ không thuộc thẩm quyền"
    plan.steps.append(Step(at, 3, plan.steps[0].officer, content, "Công chức"))
    return plan


def _withdrawn(drawer: Drawer, plan: DossierPlan) -> DossierPlan | None:
    """Withdrawn at the desk, which the system records within the hour."""
    received = plan.received_at
    assert received is not None
    handler = drawer.assign(plan, drawer.add(received, drawer.uniform(0.3, 2)))
    at = drawer.between(plan.steps[-1].at + 30 * MINUTE, drawer.now - 30 * MINUTE)
    if at is None:
        return None
    drawer.report(plan, "withdrawn", at, "Công dân rút hồ sơ tại Bộ phận Một cửa")
    system_at = at + timedelta(minutes=int(drawer.uniform(5, 60)))
    plan.steps.append(Step(min(system_at, drawer.now), 7, handler, "Công dân rút hồ sơ"))
    return plan


def _stopped(drawer: Drawer, plan: DossierPlan) -> DossierPlan | None:
    """Stopped by the handler: the applicant does not qualify."""
    received = plan.received_at
    assert received is not None
    handler = drawer.assign(plan, drawer.add(received, drawer.uniform(0.3, 2)))
    at = drawer.between(plan.steps[-1].at + 30 * MINUTE, drawer.now - 30 * MINUTE)
    if at is None:
        return None
    plan.steps.append(Step(at, 8, handler, "Dừng xử lý: đối tượng không đủ điều kiện"))
    return plan


def _processed(drawer: Drawer, plan: DossierPlan) -> DossierPlan | None:
    """Signed off (a few late), mostly handed back and recorded by the desk; else still open."""
    received = plan.received_at
    assert received is not None
    hours = plan.procedure.days * 8
    handler = drawer.assign(plan, drawer.add(received, hours * drawer.uniform(0.05, 0.15)))
    factor = drawer.uniform(1.05, 1.8) if drawer.chance(0.08) else drawer.uniform(0.25, 0.95)
    finished = drawer.add(received, hours * factor)
    if finished <= drawer.now - 30 * MINUTE:
        plan.finished_at = finished
        leader = drawer.officer(plan.unit, "leader")
        plan.steps.append(Step(finished, 9, leader, "Ký duyệt kết quả", "Lãnh đạo"))
        handover = drawer.add(finished, drawer.uniform(0.25, 12))
        if handover <= drawer.now - 10 * MINUTE and drawer.chance(0.94):
            desk = drawer.officer(plan.unit, "desk")
            plan.returned_at = handover
            plan.steps.append(Step(handover, 10, desk, "Trả kết quả", "Công chức"))
            if drawer.chance(0.6 if plan.channel == 2 else 0.92):
                drift = timedelta(minutes=int(drawer.uniform(-10, 10)))
                occurred = min(max(handover + drift, finished + MINUTE), drawer.now)
                drawer.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
        return plan
    return _still_open(drawer, plan, handler)


def _still_open(drawer: Drawer, plan: DossierPlan, handler: str) -> DossierPlan | None:
    """Still in hand: a late one was rescheduled in time, so none is overdue without apology."""
    window_hours = drawer.settings.due_soon_window.total_seconds() / 3600
    due = plan.due_at
    if due is not None and drawer.cal.working_time_between(drawer.now, due) <= timedelta(
        hours=window_hours + 2
    ):
        # Late or nearly so: the officer asked for documents or apologised with a new date.
        asked = drawer.between(plan.steps[-1].at + 5 * MINUTE, min(due, drawer.now) - MINUTE)
        if asked is None:
            return None
        new_due = drawer.add(drawer.now, drawer.uniform(window_hours + 8, window_hours + 40))
        entry = {
            "NgayYeuCau": format_thoi_diem(asked),
            "NgayHenTraTruoc": format_thoi_diem(due),
            "NgayHenTraMoi": format_thoi_diem(new_due),
        }
        if drawer.chance(0.5):
            entry["LyDo"] = "Bổ sung bản sao giấy tờ còn thiếu"
            plan.reschedules.append(("DanhSachHoSoBoSung", entry))
            plan.steps.append(Step(asked, 5, handler, "Yêu cầu bổ sung giấy tờ"))
            return plan
        entry["LyDo"] = "Chờ ý kiến phối hợp của cơ quan liên quan"
        plan.reschedules.append(("DanhSachXinLoi", entry))
        plan.steps.append(Step(asked, 4, handler, "Gửi văn bản xin lỗi, hẹn lại ngày trả"))
    elif plan.procedure in LAND and drawer.chance(0.15):
        at = drawer.between(plan.steps[-1].at + 5 * MINUTE, drawer.now - 5 * MINUTE)
        if at is not None:
            plan.steps.append(Step(at, 6, handler, "Chuyển thông tin thuế, chờ nộp nghĩa vụ"))
    drawer.keep_busy(plan, handler)
    return plan
