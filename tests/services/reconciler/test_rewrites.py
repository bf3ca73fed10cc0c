"""DATES_REWRITTEN (contract §4): dates edited afterwards to hide lateness — found in emitted
order whatever the arrival order; explained extensions never flagged."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconciler.facts import TICK, DossierFacts
from services.reconciler.rewrites import dates_rewritten
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.date_marks import DateMarks, SnapshotDates, merge_all
from shared.vocabulary import Kind, Severity
from tests.factories import default_rule_settings

CALENDAR = WorkingCalendar()
SETTINGS = default_rule_settings(CALENDAR)
TOLERANCE = SETTINGS.time_tolerance


def vn(day: int, hour: int = 17) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=VN_TZ)


def seen(
    at: datetime,
    due: datetime | None = None,
    *,
    source: datetime | None = None,
    finished: datetime | None = None,
    returned: datetime | None = None,
) -> SnapshotDates:
    return SnapshotDates(at, due, source, finished, returned)


def verdict(*snapshots: SnapshotDates) -> dict[str, object] | None:
    """What the reconciler says once every snapshot is in: the newest against the marks."""
    newest = max(snapshots, key=lambda snapshot: snapshot.emitted_at)
    facts = DossierFacts(
        "000.00.12.H08-250303-0001",
        4,
        newest.due_at,
        newest.finished_at,
        newest.returned_at,
        newest.emitted_at,
        snapshot_at=newest.emitted_at,
        due_source_at=newest.due_source_at,
        date_marks=merge_all(DateMarks(), snapshots),
    )
    found = dates_rewritten(facts, calendar=CALENDAR, settings=SETTINGS)
    if found is None:
        return None
    assert (found.kind, found.severity) == (Kind.DATES_REWRITTEN, Severity.CRITICAL)
    return found.details


def test_the_promised_date_moved_later_is_a_rewrite() -> None:
    details = verdict(seen(vn(3, 9), vn(10)), seen(vn(12, 9), vn(14)))
    assert details is not None
    assert (details["field"], details["before"], details["after"]) == (
        "NgayHenTra",
        vn(10).isoformat(),
        vn(14).isoformat(),
    )
    assert details["before_seen_at"] == vn(3, 9).isoformat()
    assert details["after_seen_at"] == vn(12, 9).isoformat()


def test_a_rewrite_that_arrives_before_what_it_rewrites_is_still_a_rewrite() -> None:
    original, rewrite = seen(vn(3, 9), vn(10)), seen(vn(12, 9), vn(14))
    assert verdict(rewrite, original) == verdict(original, rewrite) is not None


def test_the_dates_put_back_end_it() -> None:
    assert verdict(seen(vn(3, 9), vn(10)), seen(vn(12, 9), vn(14)), seen(vn(13, 9), vn(10))) is None


def test_an_earlier_date_is_no_rewrite() -> None:
    assert verdict(seen(vn(3, 9), vn(10)), seen(vn(5, 9), vn(7))) is None


def test_a_supplement_request_giving_the_new_date_is_no_rewrite() -> None:
    promised = seen(vn(3, 9), vn(10))
    supplement = seen(vn(6, 9), vn(17), source=vn(6, 8))
    assert verdict(promised, supplement) is None


def test_an_apology_then_a_second_one_is_no_rewrite() -> None:
    snapshots = (
        seen(vn(3, 9), vn(10)),
        seen(vn(11, 9), vn(14), source=vn(11, 8)),  # apology
        seen(vn(15, 9), vn(19), source=vn(15, 8)),  # a second apology, new date again
    )
    for order in itertools.permutations(snapshots):
        assert verdict(*order) is None


def test_supplement_and_apology_both_are_no_rewrite() -> None:
    snapshots = (
        seen(vn(3, 9), vn(10)),
        seen(vn(5, 9), vn(12), source=vn(5, 8)),  # supplement
        seen(vn(13, 9), vn(18), source=vn(13, 8)),  # apology
    )
    for order in itertools.permutations(snapshots):
        assert verdict(*order) is None


def test_several_supplements_and_apologies_in_any_order_are_no_rewrite() -> None:
    snapshots = (
        seen(vn(3, 9), vn(10)),
        seen(vn(4, 9), vn(11), source=vn(4, 8)),  # a first supplement request
        seen(vn(7, 9), vn(13), source=vn(7, 8)),  # a second one
        seen(vn(14, 9), vn(17), source=vn(14, 8)),  # an apology
        seen(vn(18, 9), vn(21), source=vn(18, 8)),  # and another
    )
    for order in itertools.permutations(snapshots):
        assert verdict(*order) is None


def test_an_apologys_new_date_edited_later_is_a_rewrite() -> None:
    apology = seen(vn(11, 9), vn(14), source=vn(11, 8))
    edited = seen(vn(16, 9), vn(20), source=vn(11, 8))  # the same entry, a later date
    details = verdict(seen(vn(3, 9), vn(10)), apology, edited)
    assert details is not None
    assert (details["field"], details["before"], details["after"]) == (
        "NgayHenTraMoi",
        vn(14).isoformat(),
        vn(20).isoformat(),
    )


def test_the_end_stamp_moved_earlier_beyond_the_tolerance_is_a_rewrite() -> None:
    finished = vn(14, 10)
    details = verdict(
        seen(vn(14, 11), vn(10), finished=finished),
        seen(vn(15, 9), vn(10), finished=finished - TOLERANCE - TICK),
    )
    assert details is not None and details["field"] == "NgayKetThucXuLy"


def test_the_end_stamp_moved_earlier_within_the_tolerance_is_no_rewrite() -> None:
    finished = vn(14, 10)
    assert (
        verdict(
            seen(vn(14, 11), vn(10), finished=finished),
            seen(vn(15, 9), vn(10), finished=finished - TOLERANCE),
        )
        is None
    )


def test_ngay_tra_moved_earlier_is_a_rewrite() -> None:
    returned = vn(14, 15)
    details = verdict(
        seen(vn(14, 16), vn(10), returned=returned),
        seen(vn(20, 9), vn(10), returned=returned - timedelta(days=4)),
    )
    assert details is not None and details["field"] == "NgayTra"


moments = st.integers(min_value=0, max_value=20 * 24).map(
    lambda hours: vn(1, 0) + timedelta(hours=hours)
)
snapshot_dates = st.builds(
    SnapshotDates,
    emitted_at=moments,
    due_at=st.none() | moments,
    due_source_at=st.none() | moments,
    finished_at=st.none() | moments,
    returned_at=st.none() | moments,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(snapshot_dates, min_size=1, max_size=5, unique_by=lambda s: s.emitted_at), st.randoms()
)
def test_any_arrival_order_gives_the_same_marks_and_findings(
    snapshots: list[SnapshotDates], shuffler: object
) -> None:
    reordered = list(snapshots)
    shuffler.shuffle(reordered)  # type: ignore[attr-defined]
    assert merge_all(DateMarks(), reordered) == merge_all(DateMarks(), snapshots)
    assert verdict(*reordered) == verdict(*snapshots)
