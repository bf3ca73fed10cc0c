"""The seven discrepancy rules (contract §4), their precomputed marks and next_change."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconciler.rules import (
    TICK,
    DeskReport,
    DossierFacts,
    Finding,
    RuleSettings,
    due_soon_from,
    evaluate,
    next_change,
    stall_mark,
)
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.dvcqg import effective_due_at
from shared.vocabulary import Kind, Severity
from tests.factories import default_rule_settings

CALENDAR = WorkingCalendar()
SETTINGS = default_rule_settings()
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


DESK_AT = vn(2025, 3, 5, 9)  # a Wednesday


def facts(
    status: int | None = 4,
    *,
    due_at: datetime | None = None,
    finished_at: datetime | None = None,
    returned_at: datetime | None = None,
    last_activity_at: datetime | None = None,
) -> DossierFacts:
    return DossierFacts(
        code="000.00.12.H08-250305-0001",
        status=status,
        due_at=due_at,
        finished_at=finished_at,
        returned_at=returned_at,
        last_activity_at=last_activity_at,
    )


def desk(
    kind: Literal["returned", "withdrawn"] = "returned",
    at: datetime = DESK_AT,
    report_id: str = "r1",
) -> DeskReport:
    return DeskReport(report_id=report_id, kind=kind, occurred_at=at, officer="desk.an")


def judge(dossier: DossierFacts | None, reports: list[DeskReport], now: datetime) -> list[Finding]:
    return evaluate(dossier, reports, now=now, calendar=CALENDAR, settings=SETTINGS)


def kinds(findings: list[Finding]) -> list[tuple[Kind, Severity]]:
    return [(finding.kind, finding.severity) for finding in findings]


@dataclass(frozen=True)
class Case:
    facts: DossierFacts | None
    reports: list[DeskReport]
    now: datetime
    expected: list[tuple[Kind, Severity]]


GRACE = SETTINGS.return_grace
RBO, TM, SC = Kind.RETURNED_BUT_OPEN, Kind.TIME_MISMATCH, Kind.STATUS_CONFLICT
NIS, OVERDUE, SOON, STALLED = (
    Kind.NOT_IN_SYSTEM,
    Kind.OVERDUE_NO_APOLOGY,
    Kind.DUE_SOON,
    Kind.STALLED,
)
CRIT, WARN, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO

CASES = {
    # RETURNED_BUT_OPEN
    # At the grace's end the system is still within it (as a dossier is on time at its due
    # date); the rule holds from the first instant after.
    "returned-status-4-at-grace": Case(facts(4), [desk()], DESK_AT + GRACE, []),
    "returned-status-4-one-tick-after-grace": Case(
        facts(4), [desk()], DESK_AT + GRACE + TICK, [(RBO, CRIT)]
    ),
    "returned-status-4-one-minute-before-grace": Case(
        facts(4), [desk()], DESK_AT + GRACE - MINUTE, []
    ),
    "returned-status-4-one-tick-before-grace": Case(facts(4), [desk()], DESK_AT + GRACE - TICK, []),
    "returned-status-1": Case(facts(1), [desk()], DESK_AT + 3 * HOUR, [(RBO, CRIT)]),
    "returned-status-5": Case(facts(5), [desk()], DESK_AT + 3 * HOUR, [(RBO, CRIT)]),
    "returned-status-9-is-a-warning": Case(facts(9), [desk()], DESK_AT + 3 * HOUR, [(RBO, WARN)]),
    "withdrawn-status-4": Case(facts(4), [desk("withdrawn")], DESK_AT + 3 * HOUR, [(RBO, CRIT)]),
    "withdrawn-status-9": Case(facts(9), [desk("withdrawn")], DESK_AT + 3 * HOUR, [(RBO, WARN)]),
    "returned-only-steps-known": Case(facts(None), [desk()], DESK_AT + 3 * HOUR, []),
    "returned-overdue-open-only-returned-but-open": Case(
        facts(4, due_at=DESK_AT - 48 * HOUR, last_activity_at=DESK_AT - 30 * 24 * HOUR),
        [desk()],
        DESK_AT + 3 * HOUR,
        [(RBO, CRIT)],
    ),
    # the system catches up
    "system-caught-up-to-10": Case(
        facts(10, returned_at=DESK_AT + 30 * MINUTE, finished_at=DESK_AT - 24 * HOUR),
        [desk()],
        DESK_AT + 3 * HOUR,
        [],
    ),
    "system-at-10-without-dates": Case(facts(10), [desk()], DESK_AT + 3 * HOUR, []),
    # TIME_MISMATCH
    "ngay-tra-six-hours-late": Case(
        facts(10, returned_at=DESK_AT + 6 * HOUR), [desk()], DESK_AT + 7 * HOUR, [(TM, WARN)]
    ),
    "ngay-tra-six-hours-early": Case(
        facts(10, returned_at=DESK_AT - 6 * HOUR), [desk()], DESK_AT + HOUR, [(TM, WARN)]
    ),
    "ngay-tra-exactly-at-tolerance": Case(
        facts(10, returned_at=DESK_AT + 4 * HOUR), [desk()], DESK_AT + 5 * HOUR, []
    ),
    "finished-an-hour-after-desk-return-is-within-tolerance": Case(
        facts(10, finished_at=DESK_AT + HOUR, returned_at=DESK_AT + HOUR),
        [desk()],
        DESK_AT + 3 * HOUR,
        [],
    ),
    "finished-37-seconds-after-the-desks-minute": Case(
        facts(10, finished_at=DESK_AT + 37 * SECOND, returned_at=DESK_AT + MINUTE),
        [desk()],
        DESK_AT + 3 * HOUR,
        [],
    ),
    "finished-exactly-at-tolerance-after-desk-return": Case(
        facts(10, finished_at=DESK_AT + 4 * HOUR, returned_at=DESK_AT),
        [desk()],
        DESK_AT + 5 * HOUR,
        [],
    ),
    "finished-a-tick-beyond-tolerance-after-desk-return": Case(
        facts(10, finished_at=DESK_AT + 4 * HOUR + TICK, returned_at=DESK_AT),
        [desk()],
        DESK_AT + 5 * HOUR,
        [(TM, WARN)],
    ),
    "withdrawn-vs-10-is-no-time-mismatch": Case(
        facts(10, returned_at=DESK_AT + 6 * HOUR),
        [desk("withdrawn")],
        DESK_AT + 7 * HOUR,
        [(SC, WARN)],
    ),
    # STATUS_CONFLICT
    "returned-but-system-stopped-8": Case(facts(8), [desk()], DESK_AT + MINUTE, [(SC, WARN)]),
    "returned-but-system-refused-3": Case(facts(3), [desk()], DESK_AT + MINUTE, [(SC, WARN)]),
    "returned-but-system-withdrawn-7": Case(facts(7), [desk()], DESK_AT + MINUTE, [(SC, WARN)]),
    "withdrawn-but-system-returned-10": Case(
        facts(10), [desk("withdrawn")], DESK_AT + MINUTE, [(SC, WARN)]
    ),
    "withdrawn-and-system-withdrawn-7": Case(facts(7), [desk("withdrawn")], DESK_AT + HOUR, []),
    "latest-report-counts": Case(
        facts(10),
        [desk("withdrawn", DESK_AT - HOUR, "r0"), desk("returned", DESK_AT, "r1")],
        DESK_AT + HOUR,
        [],
    ),
    "ties-on-time-broken-by-report-id": Case(
        facts(10),
        [desk("returned", DESK_AT, "r2"), desk("withdrawn", DESK_AT, "r1")],
        DESK_AT + HOUR,
        [],
    ),
    # NOT_IN_SYSTEM
    "unknown-dossier-after-grace": Case(None, [desk()], DESK_AT + GRACE + TICK, [(NIS, CRIT)]),
    "unknown-dossier-at-grace": Case(None, [desk()], DESK_AT + GRACE, []),
    "unknown-withdrawn-after-grace": Case(
        None, [desk("withdrawn")], DESK_AT + GRACE + TICK, [(NIS, CRIT)]
    ),
    "unknown-dossier-within-grace": Case(None, [desk()], DESK_AT + GRACE - TICK, []),
    "unknown-dossier-no-report": Case(None, [], DESK_AT, []),
    # OVERDUE_NO_APOLOGY
    "open-past-due": Case(facts(4, due_at=DESK_AT), [], DESK_AT + MINUTE, [(OVERDUE, CRIT)]),
    "waiting-on-applicant-past-due": Case(
        facts(5, due_at=DESK_AT), [], DESK_AT + HOUR, [(OVERDUE, CRIT)]
    ),
    "at-the-due-moment-not-yet-overdue": Case(
        facts(4, due_at=DESK_AT), [], DESK_AT, [(SOON, INFO)]
    ),
    "finished-9-past-due-is-not-open": Case(facts(9, due_at=DESK_AT), [], DESK_AT + HOUR, []),
    "no-due-date-no-due-rules": Case(facts(4, due_at=None), [], DESK_AT, []),
    # DUE_SOON in working hours: due Monday 3/2/2025 08:00, right after Tết
    "after-tet-friday-before-tet-is-two-working-hours": Case(
        facts(4, due_at=vn(2025, 2, 3, 8)), [], vn(2025, 1, 24, 16), [(SOON, INFO)]
    ),
    "after-tet-thursday-before-tet-is-ten-working-hours": Case(
        facts(4, due_at=vn(2025, 2, 3, 8)), [], vn(2025, 1, 23, 16), []
    ),
    "due-inside-tet": Case(
        facts(4, due_at=vn(2025, 1, 29, 10)), [], vn(2025, 1, 24, 10), [(SOON, INFO)]
    ),
    "due-inside-tet-a-day-earlier": Case(
        facts(4, due_at=vn(2025, 1, 29, 10)), [], vn(2025, 1, 23, 10), []
    ),
    # due on the substituted day off, Friday 2/5/2025 (30/4 and 1/5 are holidays too)
    "due-on-substituted-day-off": Case(
        facts(4, due_at=vn(2025, 5, 2, 9)), [], vn(2025, 4, 29, 10), [(SOON, INFO)]
    ),
    "due-on-substituted-day-off-nine-hours-ahead": Case(
        facts(4, due_at=vn(2025, 5, 2, 9)), [], vn(2025, 4, 28, 16), []
    ),
    # due Monday 28/4/2025 09:00, Saturday 26/4 is worked
    "worked-saturday-counts-before-monday-deadline": Case(
        facts(4, due_at=vn(2025, 4, 28, 9)), [], vn(2025, 4, 25, 16), []
    ),
    "worked-saturday-morning": Case(
        facts(4, due_at=vn(2025, 4, 28, 9)), [], vn(2025, 4, 26, 10), [(SOON, INFO)]
    ),
    "due-soon-window-edge-on-friday-evening": Case(
        facts(4, due_at=vn(2025, 3, 10, 17)), [], vn(2025, 3, 7, 17), [(SOON, INFO)]
    ),
    "due-soon-window-edge-one-tick-before-closing": Case(
        facts(4, due_at=vn(2025, 3, 10, 17)), [], vn(2025, 3, 7, 17) - TICK, []
    ),
    # an apology moves the date: the apology's new date is in the future
    "apology-extends-deadline": Case(
        facts(
            4,
            due_at=effective_due_at(
                {
                    "NgayHenTra": "20250303170000",
                    "DanhSachXinLoi": [
                        {
                            "NgayYeuCau": "20250303100000",
                            "NgayHenTraTruoc": "20250303170000",
                            "NgayHenTraMoi": "20250314170000",
                        }
                    ],
                }
            ),
            last_activity_at=DESK_AT,
        ),
        [],
        DESK_AT,
        [],
    ),
    # STALLED: 24 working hours after the last activity (Wed 5/3 09:00 → Mon 10/3 09:00)
    "stalled-just-after-three-working-days": Case(
        facts(4, last_activity_at=DESK_AT), [], vn(2025, 3, 10, 9) + TICK, [(STALLED, WARN)]
    ),
    "not-stalled-at-exactly-three-working-days": Case(
        facts(4, last_activity_at=DESK_AT), [], vn(2025, 3, 10, 9), []
    ),
    "not-stalled-over-a-weekend": Case(
        facts(2, last_activity_at=vn(2025, 3, 7, 9)), [], vn(2025, 3, 11, 8), []
    ),
    "status-5-never-stalled": Case(
        facts(5, last_activity_at=vn(2024, 1, 1)), [], vn(2025, 3, 5), []
    ),
    "status-6-never-stalled": Case(
        facts(6, last_activity_at=vn(2024, 1, 1)), [], vn(2025, 3, 5), []
    ),
    "stalled-and-overdue-together": Case(
        facts(4, due_at=vn(2025, 3, 1), last_activity_at=vn(2025, 2, 1)),
        [],
        vn(2025, 3, 5),
        [(OVERDUE, CRIT), (STALLED, WARN)],
    ),
    "desk-report-silences-stall": Case(
        facts(10, last_activity_at=vn(2025, 1, 1)), [desk()], vn(2025, 3, 6), []
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_rule_table(case: Case) -> None:
    assert kinds(judge(case.facts, case.reports, case.now)) == case.expected


def test_returned_but_open_since_is_grace_expiry() -> None:
    (finding,) = judge(facts(4), [desk()], DESK_AT + 5 * HOUR)
    assert finding.since == DESK_AT + GRACE + TICK
    assert finding.details["system_status"] == 4
    assert finding.details["occurred_at"] == "2025-03-05T09:00:00+07:00"


def test_time_mismatch_reports_the_difference_in_minutes() -> None:
    returned = DESK_AT + 6 * HOUR
    (finding,) = judge(facts(10, returned_at=returned), [desk()], DESK_AT + 7 * HOUR)
    assert finding.details["difference_minutes"] == 360
    assert finding.since == returned


def test_overdue_since_is_the_due_date() -> None:
    (finding,) = judge(facts(4, due_at=DESK_AT), [], DESK_AT + 24 * HOUR)
    assert finding.since == DESK_AT


def test_due_soon_since_is_its_mark() -> None:
    due = vn(2025, 3, 10, 17)  # a full working day ahead from Friday's closing
    (finding,) = judge(facts(4, due_at=due), [], vn(2025, 3, 8, 12))
    assert finding.since == vn(2025, 3, 7, 17)
    assert finding.since == due_soon_from(due, calendar=CALENDAR, settings=SETTINGS)


def test_stalled_since_is_the_stall_mark() -> None:
    dossier = facts(4, last_activity_at=DESK_AT)
    (finding,) = judge(dossier, [], vn(2025, 3, 12))
    assert finding.since == vn(2025, 3, 10, 9) + TICK
    assert finding.since == stall_mark(dossier, calendar=CALENDAR, settings=SETTINGS)


def test_stall_mark_is_none_while_waiting_on_the_applicant() -> None:
    assert (
        stall_mark(facts(5, last_activity_at=DESK_AT), calendar=CALENDAR, settings=SETTINGS) is None
    )


def test_findings_are_sorted_by_kind_and_json_friendly() -> None:
    import json

    found = judge(
        facts(4, due_at=vn(2025, 3, 1), last_activity_at=vn(2025, 2, 1)), [], vn(2025, 3, 5)
    )
    assert [f.kind for f in found] == sorted(f.kind for f in found)
    json.dumps([f.details for f in found])


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        judge(facts(4), [], datetime(2025, 3, 5, 9))


def test_next_change_is_the_grace_expiry_for_a_returned_but_open_dossier() -> None:
    assert (
        next_change(facts(4), [desk()], now=DESK_AT, calendar=CALENDAR, settings=SETTINGS)
        == DESK_AT + GRACE + TICK
    )


def test_next_change_is_none_when_nothing_depends_on_time() -> None:
    assert (
        next_change(facts(10), [desk()], now=DESK_AT, calendar=CALENDAR, settings=SETTINGS) is None
    )


# ---- properties ----------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 12, 31),
    timezones=st.sampled_from([VN_TZ, UTC]),
)
optional_moments = st.none() | moments
reports_strategy = st.lists(
    st.builds(
        DeskReport,
        report_id=st.sampled_from(["a", "b", "c"]),
        kind=st.sampled_from(["returned", "withdrawn"]),
        occurred_at=st.sampled_from([vn(2025, 6, 2, 9), vn(2025, 6, 3, 15)]) | moments,
        officer=st.sampled_from(["desk.an", "desk.binh"]),
    ),
    max_size=4,
)
facts_strategy = st.builds(
    DossierFacts,
    code=st.just("X-1"),
    status=st.none() | st.integers(min_value=1, max_value=10),
    due_at=optional_moments,
    finished_at=optional_moments,
    returned_at=optional_moments,
    last_activity_at=optional_moments,
)
open_facts = facts_strategy.filter(lambda f: f.status in {1, 2, 4, 5, 6})
settings_strategy = st.builds(
    RuleSettings,
    return_grace=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=5)),
    time_tolerance=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=8)),
    due_soon_window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40)),
    stall_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=80)),
)


def run(
    dossier: DossierFacts | None, reports: list[DeskReport], now: datetime, rules: RuleSettings
) -> list[Finding]:
    return evaluate(dossier, reports, now=now, calendar=CALENDAR, settings=rules)


@settings(max_examples=300)
@given(dossier=st.none() | facts_strategy, reports=reports_strategy, now=moments, data=st.data())
def test_evaluate_ignores_the_order_of_reports(
    dossier: DossierFacts | None, reports: list[DeskReport], now: datetime, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(reports))
    assert run(dossier, reports, now, SETTINGS) == run(dossier, shuffled, now, SETTINGS)


@settings(max_examples=500)
@given(
    dossier=open_facts,
    now=moments,
    rules=settings_strategy,
    nudge=st.sampled_from([None, -1, 0, 1]),
)
def test_due_soon_agrees_with_its_mark_and_definition(
    dossier: DossierFacts, now: datetime, rules: RuleSettings, nudge: int | None
) -> None:
    mark = due_soon_from(dossier.due_at, calendar=CALENDAR, settings=rules)
    if nudge is not None and mark is not None:
        now = mark + nudge * TICK  # land right on the edge
    found = {f.kind: f for f in run(dossier, [], now, rules)}
    if dossier.due_at is None:
        assert mark is None and Kind.DUE_SOON not in found
        return
    assert mark is not None
    by_definition = now <= dossier.due_at and (
        CALENDAR.working_time_between(now, dossier.due_at) <= rules.due_soon_window
    )
    by_mark = dossier.due_at >= now >= mark
    assert (Kind.DUE_SOON in found) == by_definition == by_mark
    if by_mark:
        assert found[Kind.DUE_SOON].since == mark


@settings(max_examples=500)
@given(
    dossier=open_facts,
    now=moments,
    rules=settings_strategy,
    nudge=st.sampled_from([None, -1, 0, 1]),
)
def test_stalled_agrees_with_its_mark_and_definition(
    dossier: DossierFacts, now: datetime, rules: RuleSettings, nudge: int | None
) -> None:
    mark = stall_mark(dossier, calendar=CALENDAR, settings=rules)
    if nudge is not None and mark is not None:
        now = mark + nudge * TICK
    found = {f.kind: f for f in run(dossier, [], now, rules)}
    if dossier.status in {5, 6} or dossier.last_activity_at is None:
        assert mark is None and Kind.STALLED not in found
        return
    assert mark is not None
    by_definition = CALENDAR.working_time_between(dossier.last_activity_at, now) > rules.stall_after
    assert (Kind.STALLED in found) == by_definition == (now >= mark)
    if by_definition:
        assert found[Kind.STALLED].since == mark


@settings(max_examples=500)
@given(
    dossier=st.none() | facts_strategy,
    reports=reports_strategy,
    now=moments,
    rules=settings_strategy,
)
def test_next_change_is_the_next_moment_the_answer_changes(
    dossier: DossierFacts | None, reports: list[DeskReport], now: datetime, rules: RuleSettings
) -> None:
    change = next_change(dossier, reports, now=now, calendar=CALENDAR, settings=rules)
    current = run(dossier, reports, now, rules)
    if change is None:
        assert run(dossier, reports, now + timedelta(days=800), rules) == current
        return
    assert change > now
    assert run(dossier, reports, change - TICK, rules) == current
    assert run(dossier, reports, change, rules) != current


@settings(max_examples=200)
@given(dossier=open_facts, now=moments)
def test_findings_do_not_depend_on_how_now_is_zoned(dossier: DossierFacts, now: datetime) -> None:
    assert run(dossier, [], now, SETTINGS) == run(dossier, [], now.astimezone(UTC), SETTINGS)


def test_same_facts_later_give_equal_findings() -> None:
    dossier = facts(4, due_at=vn(2025, 3, 1), last_activity_at=vn(2025, 2, 1))
    assert judge(dossier, [], vn(2025, 3, 5)) == judge(replace(dossier), [], vn(2025, 3, 6))


# ---- due soon for short procedures --------------------------------------------------------


def same_day(received: datetime, due: datetime) -> DossierFacts:
    return replace(facts(4, due_at=due, last_activity_at=received), received_at=received)


def test_a_same_day_procedure_is_warned_a_quarter_of_its_time_ahead_not_at_intake() -> None:
    received, due = vn(2025, 3, 5, 8), vn(2025, 3, 5, 16)  # 6 working hours: lunch excluded
    dossier = same_day(received, due)
    assert kinds(judge(dossier, [], vn(2025, 3, 5, 9))) == []  # the 8 h setting would warn now
    assert kinds(judge(dossier, [], vn(2025, 3, 5, 14, 30))) == [(SOON, INFO)]  # 1.5 h ahead
    assert kinds(judge(dossier, [], vn(2025, 3, 5, 14, 29))) == []


def test_a_long_procedure_keeps_the_setting_as_its_window() -> None:
    received, due = vn(2025, 3, 3, 8), vn(2025, 3, 14, 17)  # two weeks
    dossier = replace(same_day(received, due), last_activity_at=vn(2025, 3, 14, 9))
    (finding,) = judge(dossier, [], vn(2025, 3, 14, 9, 30))
    assert finding.kind == SOON
    assert finding.details["window_minutes"] == 8 * 60
