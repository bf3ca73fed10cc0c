"""The ingest watermark (contract §4): up to when the stream is in the database, and how the
rules comparing the desk with the system wait for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reconciler import rules
from services.reconciler.rules import TICK, DeskReport, DossierFacts
from services.reconciler.watermark import PartitionProgress, lag_seconds, watermark_of
from shared.calendar import WorkingCalendar
from shared.vocabulary import Kind
from tests.factories import default_rule_settings

NOW = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)
STALE = timedelta(minutes=2)
CALENDAR = WorkingCalendar()
SETTINGS = default_rule_settings(CALENDAR)
DESK_AT = NOW - timedelta(hours=3)
JUDGED_FROM = DESK_AT + SETTINGS.return_grace + TICK


def partition(
    number: int = 0,
    *,
    position: int | None = 10,
    high_water: int | None = 10,
    newest: datetime | None = None,
    reported: datetime = NOW,
) -> PartitionProgress:
    return PartitionProgress("tthc.hoso.events", number, position, high_water, newest, reported)


def at(partitions: list[PartitionProgress]) -> datetime | None:
    return watermark_of(partitions, now=NOW, stale_after=STALE)


def test_every_partition_read_to_its_high_water_mark_is_now() -> None:
    assert at([partition(0), partition(1, position=0, high_water=0)]) == NOW


def test_a_lagging_partition_holds_the_watermark_at_its_newest_message() -> None:
    behind = NOW - timedelta(hours=5)
    assert at([partition(0), partition(1, position=3, newest=behind)]) == behind


def test_the_most_lagging_partition_wins() -> None:
    older, newer = NOW - timedelta(hours=5), NOW - timedelta(hours=1)
    lagging = [partition(0, position=3, newest=newer), partition(1, position=3, newest=older)]
    assert at(lagging) == older


@pytest.mark.parametrize(
    "unknown",
    [
        partition(high_water=None),  # before the partition's first poll
        partition(position=None),
        partition(position=3, newest=None),  # lagging and nothing consumed yet
        partition(reported=NOW - STALE - TICK),  # nobody reported it for two minutes
    ],
    ids=["no-high-water", "no-position", "lagging-nothing-consumed", "stale"],
)
def test_unknown_when_a_partition_cannot_say(unknown: PartitionProgress) -> None:
    assert at([partition(1), unknown]) is None


def test_unknown_when_no_consumer_ever_reported() -> None:
    assert at([]) is None


def test_a_report_exactly_at_the_staleness_limit_still_counts() -> None:
    assert at([partition(reported=NOW - STALE)]) == NOW


def test_lag_gauge_is_infinite_when_unknown_and_zero_when_caught_up() -> None:
    assert lag_seconds(None, now=NOW) == float("inf")
    assert lag_seconds(NOW, now=NOW) == 0
    assert lag_seconds(rules.EVERYTHING_DELIVERED, now=NOW) == 0
    assert lag_seconds(NOW - timedelta(minutes=31), now=NOW) == 31 * 60


# ---- the rules wait for it ---------------------------------------------------------------

CODE = "000.00.12.H08-250305-0001"


def facts(status: int) -> DossierFacts:
    return DossierFacts(CODE, status, None, None, None, DESK_AT - timedelta(days=1))


def returned_later() -> DossierFacts:
    """Returned on the system six hours after the desk's moment: a TIME_MISMATCH once judged."""
    return DossierFacts(CODE, 10, None, None, DESK_AT + timedelta(hours=6), DESK_AT)


def desk() -> DeskReport:
    return DeskReport("r1", "returned", DESK_AT, "desk.an")


def judge(dossier: DossierFacts | None, delivered_until: datetime | None) -> rules.Verdict:
    return rules.judge(
        dossier,
        [desk()],
        now=NOW,
        calendar=CALENDAR,
        settings=SETTINGS,
        delivered_until=delivered_until,
    )


@pytest.mark.parametrize(
    "delivered_until", [None, JUDGED_FROM - TICK], ids=["unknown", "just-before-grace-end"]
)
@pytest.mark.parametrize(
    ("dossier", "kind"),
    [
        (facts(4), Kind.RETURNED_BUT_OPEN),
        (None, Kind.NOT_IN_SYSTEM),
        (facts(8), Kind.STATUS_CONFLICT),
        (returned_later(), Kind.TIME_MISMATCH),
    ],
    ids=["returned-but-open", "not-in-system", "status-conflict", "time-mismatch"],
)
def test_a_desk_report_waits_until_the_stream_passed_its_grace(
    dossier: DossierFacts | None, kind: Kind, delivered_until: datetime | None
) -> None:
    verdict = judge(dossier, delivered_until)
    assert [(finding.kind, finding.held) for finding in verdict.findings] == [(kind, True)]
    assert verdict.next_check == JUDGED_FROM
    assert verdict.waits_for_watermark


@pytest.mark.parametrize("delivered_until", [JUDGED_FROM, NOW, rules.EVERYTHING_DELIVERED])
def test_once_the_stream_passed_it_the_desk_report_is_judged(delivered_until: datetime) -> None:
    verdict = judge(facts(4), delivered_until)
    assert [(finding.kind, finding.held) for finding in verdict.findings] == [
        (Kind.RETURNED_BUT_OPEN, False)
    ]
    assert not verdict.waits_for_watermark


def test_a_waiting_dossier_the_system_already_returned_has_nothing_to_hold() -> None:
    verdict = judge(facts(10), None)
    assert verdict.findings == []
    assert verdict.waits_for_watermark  # judged again once the stream says so
