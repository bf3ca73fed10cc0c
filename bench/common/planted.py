"""The reconcile benchmark's world: a million dossier codes, 5 % with one planted discrepancy.

Of the N codes, 95 % are clean (half returned with a matching desk report, half open with a far
due date and recent activity; 5 % of the open ones had their due date moved by an explained
extension), and each planted code holds one discrepancy of its kind. Every dossier row also has
the date marks ingest keeps for ``DATES_REWRITTEN`` (10 % none: dossiers ingested before the
marks existed); for the planted ``DATES_REWRITTEN`` they remember an earlier, sooner due date or
a later ``NgayKetThucXuLy`` than the dossier shows now. They go where the schema keeps them: the
dossier's row (migration 0011) or their own table (0008 to 0010). On a revision without either
(``bench/compare.py``'s "before") the same rows are seeded and those dossiers are clean.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bench.common.seeding import NO_MARKS, Copier, marks_row
from services.reconciler.config import ReconcilerSettings
from shared.clock import system_clock
from shared.vocabulary import Kind
from tests.support.postgres import asyncpg_dsn

UNITS = [f"000.{a:02d}.{b:02d}.H08" for a in (0, 1, 2, 3) for b in range(10, 20)]
PROCEDURES = ("1.004227", "1.001612", "2.000908", "1.000894", "1.010733", "2.001711")
OFFICERS = ("lethic.motcua", "nguyenvana.motcua", "tranthib.motcua")
HANDLERS = ("phamvanc.tnmt", "levand.tuphap", "hoangthie.xaydung", None)

REWRITTEN = "DATES_REWRITTEN"
# What is planted, as a share of all dossier codes; every other code is clean.
CLEAN_OPEN, CLEAN_RETURNED = "clean open", "clean returned"
PLANTED: dict[str, float] = {
    "RETURNED_BUT_OPEN": 0.02,
    "OVERDUE_NO_APOLOGY": 0.01,
    "STALLED": 0.01,
    "TIME_MISMATCH": 0.005,
    "NOT_IN_SYSTEM": 0.005,
    REWRITTEN: 0.002,
}
LABELS = [CLEAN_OPEN, CLEAN_RETURNED, *PLANTED]  # the index of a label is stored per code
NOT_IN_SYSTEM = LABELS.index("NOT_IN_SYSTEM")
EXTENDED_SHARE = 0.05  # of the clean open: due date set by an apology or a supplement request
WITHOUT_MARKS_SHARE = 0.10  # dossiers ingested before migration 0008 kept no marks


def code_of(number: int) -> str:
    return f"{UNITS[number % len(UNITS)]}-241021-{number:07d}"


def rules_know_rewrites() -> bool:
    """Whether the code under test has the ``DATES_REWRITTEN`` rule (the revision compared
    with may predate it)."""
    return REWRITTEN in Kind.__members__


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A planted rewrite: ``column`` of dossier ``code`` moved from ``before`` to ``after``."""

    code: str
    column: str  # due_at | finished_at
    before: datetime
    after: datetime


@dataclass
class Seeded:
    now: datetime
    before: datetime  # the "last judged" moment of the periodic sweep phase (see reconcile.py)
    codes: int
    labels: bytearray  # LABELS index per dossier number
    planted: dict[str, int]  # what the run must find open (DATES_REWRITTEN when detectable)
    dossier_rows: int
    report_rows: int
    mark_rows: int
    seconds: float
    rewrites: list[Rewrite] = field(default_factory=list)


async def seed(db_url: str, total: int, rng: random.Random) -> Seeded:
    """COPY ``total`` dossier codes (dossier rows, desk reports, date marks) in one transaction."""
    started = time.perf_counter()
    planted = {kind: round(total * share) for kind, share in PLANTED.items()}
    labels = bytearray(total)  # 0 = clean
    position = 0
    for kind, count in planted.items():
        labels[position : position + count] = bytes([LABELS.index(kind)]) * count
        position += count
    rng.shuffle(labels)
    for number in range(total):  # split the clean half and half, at random
        if labels[number] == 0 and rng.random() < 0.5:
            labels[number] = 1

    now = system_clock()
    settings = ReconcilerSettings()
    calendar = settings.calendar()
    day = timedelta(days=1)
    # Stalled: the stall mark falls a little before now (at the last office minute an hour or
    # more ago), so that a periodic sweep run now is the one that finds it.
    stall_after = settings.rule_settings(calendar).stall_after
    last_office_minute = calendar.previous_office_end(now - timedelta(hours=1)) - timedelta(
        minutes=1
    )
    stalled_at = calendar.add_working_time(last_office_minute, -stall_after)
    # The periodic sweep phase judges everything first at ``before``, when no time-based
    # planted condition held yet (the last was the desk report of a day ago, or the stall).
    before = min(now - timedelta(days=4), last_office_minute - timedelta(hours=1))
    occurred = [now - day - timedelta(minutes=m) for m in range(60)]  # desk: a day ago
    recent = [now - timedelta(minutes=5 + m) for m in range(90)]  # activity: minutes ago
    received = now - timedelta(days=10)
    far_due = now + timedelta(days=60)
    past_due = now - timedelta(days=2)
    extended_at, promised = received + 3 * day, received + 20 * day
    six_hours, ten_minutes = timedelta(hours=6), timedelta(minutes=10)
    clean_open, clean_returned = 0, 1
    rbo, overdue, stalled, mismatch, nis, rewritten = (LABELS.index(kind) for kind in PLANTED)
    rewrites: list[Rewrite] = []
    mark_rows = 0

    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        copier = Copier(connection)
        await copier.start()
        keeps_marks = copier.has("dossier_date_marks") or copier.has_column(
            "dossiers", "base_due_at"
        )
        if not (keeps_marks and rules_know_rewrites()):
            planted.pop(REWRITTEN)
        async with connection.transaction():
            for number in range(total):
                label = labels[number]
                code = code_of(number)
                unit = UNITS[number % len(UNITS)]
                desk = occurred[number % 60]
                if label in (clean_returned, rbo, mismatch, nis, rewritten):
                    report = (code, "returned", desk, OFFICERS[number % 3], unit, "api")
                    copier.add(
                        "field_reports", (f"r{number}", *report, desk + timedelta(minutes=1))
                    )
                if label == nis:
                    continue  # the desk knows it, the system never sent it
                source = base_due = finished_max = None
                if label in (clean_returned, mismatch, rewritten):
                    status = 10
                    due, finished = received + timedelta(days=15), desk - timedelta(hours=1)
                    returned = desk + six_hours if label == mismatch else desk
                    activity = desk
                    if label == rewritten and number % 2 == 0:  # promised date moved later
                        base_due = received + timedelta(days=5)
                        rewrites.append(Rewrite(code, "due_at", base_due, due))
                    elif label == rewritten:  # end stamp moved earlier
                        finished_max, finished = finished, finished - 2 * day
                        rewrites.append(Rewrite(code, "finished_at", finished_max, finished))
                else:
                    status = 2 if rng.random() < 0.5 else 4
                    due, finished, returned = far_due, None, None
                    activity = recent[number % 90]
                    if label == overdue:
                        due = past_due
                    elif label == stalled:
                        activity = stalled_at
                    elif label == clean_open and rng.random() < EXTENDED_SHARE:
                        source, base_due = extended_at, promised
                    elif label not in (clean_open, rbo):
                        raise AssertionError(label)
                marks = None
                if label == rewritten or rng.random() >= WITHOUT_MARKS_SHARE:
                    marks = marks_row(
                        code,
                        seen=received if status != 10 else activity,
                        due=due,
                        source=source,
                        finished=finished,
                        returned=returned,
                        base_due=base_due,
                        finished_max=finished_max,
                    )
                    copier.add("dossier_date_marks", marks)  # a revision with their table
                    mark_rows += 1
                row: tuple[Any, ...] = (
                    *(code, status, unit, PROCEDURES[number % len(PROCEDURES)], None, None),
                    *(1 + number % 2, number % 5 != 0, received, due, source, finished),
                    *(returned, None, "{}", activity, f"s{number}", activity - ten_minutes),
                    HANDLERS[number % len(HANDLERS)],
                    *(NO_MARKS if marks is None or not NO_MARKS else marks[1:]),  # since 0011
                )
                copier.add("dossiers", row)
                if copier.full():
                    await copier.flush()
            await copier.flush()
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return Seeded(
        now=now,
        before=before,
        codes=total,
        labels=labels,
        planted=planted,
        dossier_rows=copier.copied["dossiers"],
        report_rows=copier.copied["field_reports"],
        mark_rows=mark_rows if keeps_marks else 0,
        seconds=time.perf_counter() - started,
        rewrites=rewrites,
    )


def rewrite_statement(rewrites: list[Rewrite], *, undo: bool) -> tuple[str, dict[str, Any]]:
    """One UPDATE putting the planted rewrites' dates back (``undo``) or rewriting them again,
    with ``snapshot_emitted_at`` the moment of the rewriting snapshot (``:seen``; None keeps it)."""
    codes = [rewrite.code for rewrite in rewrites]
    moments = [rewrite.before if undo else rewrite.after for rewrite in rewrites]
    columns = [rewrite.column for rewrite in rewrites]
    sql = (
        "UPDATE dossiers AS d SET "
        "due_at = CASE WHEN r.col = 'due_at' THEN r.at ELSE d.due_at END, "
        "finished_at = CASE WHEN r.col = 'finished_at' THEN r.at ELSE d.finished_at END, "
        "snapshot_emitted_at = COALESCE(CAST(:seen AS timestamptz), d.snapshot_emitted_at) "
        "FROM unnest(CAST(:codes AS text[]), CAST(:cols AS text[]), "
        "CAST(:moments AS timestamptz[])) AS r(code, col, at) WHERE d.code = r.code"
    )
    return sql, {"codes": codes, "cols": columns, "moments": moments}
