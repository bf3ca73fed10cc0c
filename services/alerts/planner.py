"""Turning discrepancy changes into outbox rows, in the transaction that made the change.

The reconciler calls :meth:`AlertPlanner.on_changes` inside its unit of work, so a discrepancy
is never committed without its notifications (and never notified without being committed).
Escalations and reminders are time-driven: :meth:`AlertPlanner.due_tracks` picks them up.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts import digest, officers, routing
from services.alerts.config import AlertsSettings
from services.alerts.content.wording import alert_content
from services.reconciler.writes import Change
from shared.directory import Directory, OfficerRecord, load_directory
from shared.models import AlertTrack, Discrepancy, Dossier, Notification, Officer, Unit

ALERT_PURPOSES = ("opened", "severity", "reminder", "escalation", "unreachable", "handover")


@dataclass(slots=True)
class _Context:
    discrepancies: dict[int, Any]
    dossiers: dict[str, Any]
    unit_names: dict[str, str]
    contacts: dict[str, OfficerRecord]
    directory: Directory

    def unit_of(self, discrepancy: Any) -> str | None:
        return self.directory.answering_unit(discrepancy.unit_code)

    def officers_of(self, unit: str | None, role: str) -> list[str]:
        return routing.officers_of(self.contacts.values(), unit, role, self.directory)

    def content(self, discrepancy: Any) -> dict[str, Any]:
        """What the message says; the unit is the one answering today (after mergers)."""
        dossier = self.dossiers.get(discrepancy.dossier_code)
        unit = self.unit_of(discrepancy)
        content = alert_content(
            discrepancy={**dict(discrepancy._mapping), "unit_code": unit},
            dossier=None if dossier is None else dict(dossier._mapping),
            unit_name=self.unit_names.get(unit or ""),
        )
        responsible = self.contacts.get(discrepancy.responsible or "")
        if responsible is not None:
            content["responsible_name"] = responsible.full_name
        return content


class AlertPlanner:
    """Writes notifications and escalation tracks; never sends anything itself."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.calendar = settings.calendar()
        zalo = settings.zalo is not None
        self.enabled = routing.EnabledChannels(
            email=settings.email is not None,
            zalo_oa=zalo,
            zalo_zns=zalo and bool(settings.zalo_zns_template_id),
        )
        self.timing = routing.Timing(
            settings.group_wait, settings.zalo_quiet_from, settings.zalo_quiet_until
        )
        self.escalate_after = timedelta(hours=settings.escalate_after_working_hours)
        self.remind_every = timedelta(hours=settings.remind_every_working_hours)

    @property
    def active(self) -> bool:
        return self.enabled.email or self.enabled.zalo_oa or self.enabled.zalo_zns

    async def on_changes(
        self, connection: AsyncConnection, changes: Sequence[Change], *, now: datetime
    ) -> int:
        """Plan the notifications of a reconcile chunk; returns how many rows were written."""
        if not changes or not self.active:
            return 0
        context = await self._context(connection, [change.discrepancy_id for change in changes])
        rows: list[dict[str, Any]] = []
        tracks: list[dict[str, Any]] = []
        resolved: list[Any] = []
        for change in changes:
            discrepancy = context.discrepancies[change.discrepancy_id]
            if change.action == "opened":
                rows += self._alert_rows("opened", discrepancy, context, now)
                tracks.append(
                    {
                        "discrepancy_id": discrepancy.id,
                        "escalate_at": self.calendar.add_working_time(now, self.escalate_after),
                        "remind_at": self.calendar.add_working_time(now, self.remind_every),
                        "reminders": 0,
                    }
                )
            elif change.action == "severity_changed" and change.severity == "critical":
                rows += self._alert_rows("severity", discrepancy, context, now)
            elif change.action == "handed_over":
                rows += await self._handover_rows(connection, discrepancy, context, now)
            elif change.action == "resolved":
                resolved.append(discrepancy)
        rows += await self._resolved_rows(connection, resolved, context, now)
        if tracks:
            await connection.execute(insert(AlertTrack), tracks)
        if rows:
            await connection.execute(insert(Notification), rows)
        return len(rows)

    async def due_tracks(self, connection: AsyncConnection, *, now: datetime, limit: int) -> int:
        """Escalate unacknowledged discrepancies and remind their handlers when it is time."""
        tracks = (
            await connection.execute(
                select(AlertTrack)
                .where(or_(AlertTrack.escalate_at <= now, AlertTrack.remind_at <= now))
                .order_by(AlertTrack.discrepancy_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not tracks:
            return 0
        context = await self._context(connection, [track.discrepancy_id for track in tracks])
        rows: list[dict[str, Any]] = []
        finished: list[int] = []
        for track in tracks:
            discrepancy = context.discrepancies.get(track.discrepancy_id)
            if discrepancy is None or discrepancy.status != "open":
                finished.append(track.discrepancy_id)
                continue
            values: dict[str, Any] = {}
            if track.escalate_at is not None and track.escalate_at <= now:
                rows += self._escalation_rows(discrepancy, context, now)
                values.update(escalate_at=None, escalated_at=now)
            if track.remind_at is not None and track.remind_at <= now:
                rows += self._alert_rows("reminder", discrepancy, context, now)
                values.update(
                    remind_at=self.calendar.add_working_time(now, self.remind_every),
                    reminders=track.reminders + 1,
                )
            await connection.execute(
                update(AlertTrack)
                .where(AlertTrack.discrepancy_id == track.discrepancy_id)
                .values(**values)
            )
        if finished:
            await connection.execute(
                delete(AlertTrack).where(AlertTrack.discrepancy_id.in_(finished))
            )
        if rows:
            await connection.execute(insert(Notification), rows)
        return len(tracks)

    async def plan_digests(
        self, connection: AsyncConnection, *, now: datetime, weekday: int, at: time
    ) -> int:
        """This week's digests for every unit's leaders, once, when their moment has come."""

        def not_before(created: datetime, channel: str) -> datetime:
            return routing.send_not_before(
                created=created,
                severity="info",
                channel=channel,
                calendar=self.calendar,
                timing=self.timing,
            )

        return await digest.plan_weekly_digests(
            connection,
            now=now,
            weekday=weekday,
            at=at,
            enabled=self.enabled,
            not_before=not_before,
        )

    def _row(
        self,
        purpose: str,
        discrepancy: Any,
        delivery: routing.Delivery,
        content: dict[str, Any],
        now: datetime,
        unit: str | None,
    ) -> dict[str, Any]:
        return {
            "discrepancy_id": discrepancy.id,
            "purpose": purpose,
            "severity": discrepancy.severity,
            "recipient": delivery.recipient,
            "channel": delivery.channel,
            "address": delivery.address,
            "unit_code": unit,
            "content": content,
            "status": "pending",
            "not_before": routing.send_not_before(
                created=now,
                severity=discrepancy.severity,
                channel=delivery.channel,
                calendar=self.calendar,
                timing=self.timing,
            ),
            "attempts": 0,
            "created_at": now,
        }

    def _rows_for(
        self,
        purpose: str,
        discrepancy: Any,
        accounts: Iterable[str],
        content: dict[str, Any],
        context: _Context,
        now: datetime,
    ) -> list[dict[str, Any]]:
        unit = context.unit_of(discrepancy)
        return [
            self._row(purpose, discrepancy, delivery, content, now, unit)
            for account in accounts
            if account in context.contacts and context.contacts[account].active
            for delivery in routing.deliveries(context.contacts[account], self.enabled)
        ]

    def _alert_rows(
        self, purpose: str, discrepancy: Any, context: _Context, now: datetime
    ) -> list[dict[str, Any]]:
        unit = context.unit_of(discrepancy)
        accounts = routing.receivers(
            kind=discrepancy.kind,
            responsible=discrepancy.responsible,
            reporter=discrepancy.reporter,
            desk_officers=context.officers_of(unit, "desk"),
            leaders=context.officers_of(unit, "leader"),
        )
        content = context.content(discrepancy)
        rows = self._rows_for(purpose, discrepancy, accounts, content, context, now)
        lost = routing.unreachable(accounts, context.contacts, self.enabled)
        if lost:
            leaders = context.officers_of(unit, "leader")
            for account in lost:
                known = context.contacts.get(account)
                about = {
                    **content,
                    "unreachable": account,
                    "unreachable_name": known.full_name if known else None,
                }
                rows += self._rows_for("unreachable", discrepancy, leaders, about, context, now)
        return rows

    def _escalation_rows(
        self, discrepancy: Any, context: _Context, now: datetime
    ) -> list[dict[str, Any]]:
        leaders = context.officers_of(context.unit_of(discrepancy), "leader")
        content = {
            **context.content(discrepancy),
            "escalate_after_working_hours": self.escalate_after.total_seconds() / 3600,
        }
        return self._rows_for("escalation", discrepancy, leaders, content, context, now)

    async def _handover_rows(
        self, connection: AsyncConnection, discrepancy: Any, context: _Context, now: datetime
    ) -> list[dict[str, Any]]:
        """The dossier changed hands: what the previous holder was not sent yet is cancelled,
        and the new holder (the handler, else the unit's desk) is told it is theirs now."""
        unit = context.unit_of(discrepancy)
        holders = routing.receivers(
            kind=discrepancy.kind,
            responsible=discrepancy.responsible,
            reporter=None,
            desk_officers=context.officers_of(unit, "desk"),
        )
        audience = {
            *routing.receivers(
                kind=discrepancy.kind,
                responsible=discrepancy.responsible,
                reporter=discrepancy.reporter,
                desk_officers=context.officers_of(unit, "desk"),
            ),
            *context.officers_of(unit, "leader"),
        }
        await connection.execute(
            update(Notification)
            .where(
                Notification.discrepancy_id == discrepancy.id,
                Notification.status == "pending",
                Notification.purpose.in_(ALERT_PURPOSES),
                Notification.recipient.not_in(sorted(audience)),
            )
            .values(status="cancelled", last_error="dossier handed to another officer")
        )
        content = context.content(discrepancy)
        return self._rows_for("handover", discrepancy, holders, content, context, now)

    async def _resolved_rows(
        self,
        connection: AsyncConnection,
        resolved: Sequence[Any],
        context: _Context,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Cancel what was not sent yet; tell those who were told that it is over."""
        if not resolved:
            return []
        ids = [discrepancy.id for discrepancy in resolved]
        await connection.execute(
            update(Notification)
            .where(
                Notification.discrepancy_id.in_(ids),
                Notification.status == "pending",
                Notification.purpose.in_(ALERT_PURPOSES),
            )
            .values(status="cancelled", last_error="discrepancy resolved before sending")
        )
        await connection.execute(delete(AlertTrack).where(AlertTrack.discrepancy_id.in_(ids)))
        told = (
            await connection.execute(
                select(Notification.discrepancy_id, Notification.recipient)
                .where(
                    Notification.discrepancy_id.in_(ids),
                    Notification.status == "sent",
                    Notification.purpose.in_(ALERT_PURPOSES),
                )
                .distinct()
            )
        ).all()
        by_discrepancy: dict[int | None, list[str]] = {}
        for ident, account in told:
            by_discrepancy.setdefault(ident, []).append(account)
        rows: list[dict[str, Any]] = []
        for discrepancy in resolved:
            accounts = sorted(by_discrepancy.get(discrepancy.id, []))
            if accounts:
                content = {**context.content(discrepancy), "resolution": discrepancy.resolution}
                rows += self._rows_for("resolved", discrepancy, accounts, content, context, now)
        return rows

    async def _context(self, connection: AsyncConnection, ids: Collection[int]) -> _Context:
        discrepancies = {
            row.id: row
            for row in (
                await connection.execute(select(Discrepancy).where(Discrepancy.id.in_(ids)))
            ).all()
        }
        codes = {row.dossier_code for row in discrepancies.values()}
        dossiers = {
            row.code: row
            for row in (
                await connection.execute(
                    select(
                        Dossier.code,
                        Dossier.procedure_name,
                        Dossier.status,
                        Dossier.due_at,
                        Dossier.snapshot,
                    ).where(Dossier.code.in_(codes))
                )
            ).all()
        }
        directory = await load_directory(connection)
        units = {directory.answering_unit(row.unit_code) for row in discrepancies.values()}
        units.discard(None)
        unit_names = dict(
            (
                await connection.execute(select(Unit.code, Unit.name).where(Unit.code.in_(units)))
            ).all()
        )
        accounts = {row.responsible for row in discrepancies.values()} | {
            row.reporter for row in discrepancies.values()
        }
        accounts.discard(None)
        nearby = {code for code in directory.parents if directory.answering_unit(code) in units}
        nearby_officers = or_(Officer.account.in_(accounts), Officer.unit_code.in_(units | nearby))
        contacts = {
            contact.account: contact
            for contact in await officers.load_contacts(connection, nearby_officers)
        }
        return _Context(discrepancies, dossiers, unit_names, contacts, directory)
