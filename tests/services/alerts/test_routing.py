"""Who is told and when: receivers, channels, group wait, office hours and the quiet night."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.alerts import routing
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.directory import Directory, OfficerRecord

ALL = routing.EnabledChannels(email=True, zalo_oa=True, zalo_zns=True)
TIMING = routing.Timing(timedelta(seconds=30), time(22, 0), time(6, 0))
CALENDAR = WorkingCalendar()


def contact(**fields: object) -> OfficerRecord:
    base = {
        "account": "an",
        "full_name": "Nguyễn Văn An",
        "unit_code": "U",
        "role": "handler",
        "email": None,
        "zalo_user_id": None,
        "phone": None,
        "active": True,
        "updated_at": datetime(2024, 11, 6, tzinfo=UTC),
    }
    return OfficerRecord(**{**base, **fields})  # type: ignore[arg-type]


def test_email_and_oa_when_both_are_known() -> None:
    found = routing.deliveries(
        contact(email="an@x.vn", zalo_user_id="uid", phone="84912345678"), ALL
    )
    assert [(d.channel, d.address) for d in found] == [("email", "an@x.vn"), ("zalo_oa", "uid")]


def test_zns_to_the_phone_when_the_officer_does_not_follow_the_oa() -> None:
    found = routing.deliveries(contact(phone="84912345678"), ALL)
    assert [(d.channel, d.address) for d in found] == [("zalo_zns", "84912345678")]


def test_disabled_channels_are_not_used() -> None:
    email_only = routing.EnabledChannels(email=True, zalo_oa=False, zalo_zns=False)
    assert routing.deliveries(contact(zalo_user_id="uid", phone="849"), email_only) == []


def test_unreachable_lists_unknown_inactive_and_addressless_officers() -> None:
    contacts = {
        "an": contact(email="an@x.vn"),
        "binh": contact(account="binh"),
        "chi": contact(account="chi", email="c@x.vn", active=False),
    }
    assert routing.unreachable(["an", "binh", "chi", "dung"], contacts, ALL) == [
        "binh",
        "chi",
        "dung",
    ]


@pytest.mark.parametrize(
    "kind,responsible,expected",
    [
        ("RETURNED_BUT_OPEN", "handler1", ["handler1", "desk1"]),
        ("NOT_IN_SYSTEM", None, ["deskA", "deskB", "desk1"]),
        ("OVERDUE_NO_APOLOGY", "handler1", ["handler1"]),
        ("STALLED", None, ["deskA", "deskB"]),
    ],
)
def test_receivers_follow_contract_section_3(
    kind: str, responsible: str | None, expected: list[str]
) -> None:
    assert (
        routing.receivers(
            kind=kind, responsible=responsible, reporter="desk1", desk_officers=["deskB", "deskA"]
        )
        == expected
    )


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=VN_TZ)


def test_group_wait_delays_every_notification() -> None:
    moment = routing.send_not_before(
        created=local(25, 9), severity="critical", channel="email", calendar=CALENDAR, timing=TIMING
    )
    assert moment == local(25, 9, 0) + timedelta(seconds=30)


def test_non_critical_waits_for_office_hours() -> None:
    moment = routing.send_not_before(
        created=local(27, 18), severity="warning", channel="email", calendar=CALENDAR, timing=TIMING
    )
    assert moment == local(30, 7)  # Friday evening → Monday 07:00


def test_critical_email_goes_at_night_but_zalo_waits_for_six() -> None:
    email = routing.send_not_before(
        created=local(25, 23),
        severity="critical",
        channel="email",
        calendar=CALENDAR,
        timing=TIMING,
    )
    zalo = routing.send_not_before(
        created=local(25, 23),
        severity="critical",
        channel="zalo_oa",
        calendar=CALENDAR,
        timing=TIMING,
    )
    assert email == local(25, 23) + timedelta(seconds=30)
    assert zalo == local(26, 6)


def test_critical_zalo_after_midnight_waits_for_six_the_same_morning() -> None:
    zalo = routing.send_not_before(
        created=local(26, 2),
        severity="critical",
        channel="zalo_zns",
        calendar=CALENDAR,
        timing=TIMING,
    )
    assert zalo == local(26, 6)


OLD_UNIT, NEW_UNIT = "000.00.12.H08", "000.00.12.H49"  # the old code was merged into the new
MERGED = Directory(parents={}, replacements={OLD_UNIT: NEW_UNIT, NEW_UNIT: None})
STAFF = [
    contact(account="old.handler", unit_code=OLD_UNIT, role="handler"),
    contact(account="new.handler", unit_code=NEW_UNIT, role="handler"),
    contact(account="new.desk", unit_code=NEW_UNIT, role="desk"),
    contact(account="new.leader", unit_code=NEW_UNIT, role="leader"),
    contact(account="new.retired", unit_code=NEW_UNIT, role="handler", active=False),
]


def test_officers_of_a_merged_code_are_the_successors_officers() -> None:
    unit = MERGED.answering_unit(OLD_UNIT)
    assert routing.officers_of(STAFF, unit, "leader", MERGED) == ["new.leader"]


def test_officers_of_leave_out_inactive_officers_and_other_roles() -> None:
    handlers = routing.officers_of(STAFF, NEW_UNIT, "handler", MERGED)
    assert handlers == ["new.handler", "old.handler"]  # old.handler's code answers to NEW now
    assert routing.officers_of(STAFF, NEW_UNIT, "desk", MERGED) == ["new.desk"]


def test_no_unit_means_no_officers() -> None:
    assert routing.officers_of(STAFF, None, "handler", MERGED) == []
