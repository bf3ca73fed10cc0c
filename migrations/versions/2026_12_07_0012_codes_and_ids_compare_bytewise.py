"""Dossier codes and event ids are compared byte by byte on PostgreSQL (``COLLATE "C"``).

Under any other collation — a language locale, and ``C.UTF-8`` too — every comparison in their
indexes goes through ``strcoll`` on NUL-terminated copies of both strings: at ingest, where
each event inserts two or four index entries keyed by them, that was about a tenth of
PostgreSQL's time (perf). With ``"C"`` the batch statement wrote 5–13 % faster in four paired
runs of ``bench/ingest_store.py`` on ``C.UTF-8`` (a language locale, not measured here, sorts
by more elaborate rules). Byte order is also the order in
which Python and SQLite compare them, so the newest-snapshot tie-break on the event id no
longer depends on the locale the cluster was created with.

Only the collation changes (the values and their order under ``C.UTF-8`` stay the same), but
PostgreSQL rebuilds each index on these columns: at a province's millions of events, run the
upgrade in a maintenance window. SQLite compares bytes already (``BINARY``): nothing to do.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, length); ``events.event_id`` before the step's key that references it.
COLUMNS = (
    ("events", "event_id", 128),
    ("events", "dossier_code", 64),
    ("progress_steps", "event_id", 128),
    ("progress_steps", "dossier_code", 64),
    ("dossiers", "code", 64),
    ("dossiers", "snapshot_event_id", 128),
    ("dossiers", "latest_step_event_id", 128),
    ("dossier_status_seen", "dossier_code", 64),
    ("field_reports", "dossier_code", 64),
    ("reconcile_schedule", "dossier_code", 64),
    ("discrepancies", "dossier_code", 64),
    ("dossier_lateness", "dossier_code", 64),
)


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in COLUMNS:
        op.execute(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length}) COLLATE "{collation}"'
        )


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
