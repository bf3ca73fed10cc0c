"""Who is told, by which channel, and when (contract §3) — pure, in Alertmanager's spirit.

- Receivers: the responsible handler (or, with nobody in particular, the unit's desk officers),
  plus the reporting desk officer for desk-driven kinds; leaders for escalations, digests and
  officers nobody can reach.
- Each receiver gets email when they have an address *and* Zalo: an OA message when they follow
  the OA (``zalo_user_id``), else ZNS to their phone.
- Timing: a group wait so that close discrepancies go out as one message; outside office hours
  only critical ones; never Zalo during the quiet night (critical ones then go by email now and
  by Zalo when the night ends).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from shared.calendar import WorkingCalendar
from shared.directory import Directory, OfficerRecord
from shared.vocabulary import LEADERS_TOLD_KINDS, REPORTER_TOLD_KINDS


@dataclass(frozen=True, slots=True)
class EnabledChannels:
    """The channels this deployment has configured (routing skips the others)."""

    email: bool
    zalo_oa: bool
    zalo_zns: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row to write: to whom, by which channel, at which address."""

    recipient: str
    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class Timing:
    """When a message may leave: the group wait and the quiet night of Zalo."""

    group_wait: timedelta
    quiet_from: time
    quiet_until: time


def officers_of(
    officers: Iterable[OfficerRecord], unit: str | None, role: str, directory: Directory
) -> list[str]:
    """Accounts of the active ``role`` officers of ``unit``, theirs or a code it replaced."""
    if unit is None:
        return []
    return sorted(
        officer.account
        for officer in officers
        if officer.active
        and officer.role == role
        and directory.answering_unit(officer.unit_code) == unit
    )


def deliveries(contact: OfficerRecord, enabled: EnabledChannels) -> list[Delivery]:
    """Every channel that reaches ``contact``: email and one Zalo route, both when possible."""
    found: list[Delivery] = []
    if contact.email and enabled.email:
        found.append(Delivery(contact.account, "email", contact.email))
    if contact.zalo_user_id and enabled.zalo_oa:
        found.append(Delivery(contact.account, "zalo_oa", contact.zalo_user_id))
    elif contact.phone and enabled.zalo_zns:
        found.append(Delivery(contact.account, "zalo_zns", contact.phone))
    return found


def receivers(
    *,
    kind: str,
    responsible: str | None,
    reporter: str | None,
    desk_officers: Iterable[str],
    leaders: Iterable[str] = (),
) -> list[str]:
    """Accounts told of a discrepancy, in a stable order and without repeats.

    Rewritten dates go to the unit's leaders directly: the handler may be who edited them.
    """
    if kind in LEADERS_TOLD_KINDS:
        return sorted(set(leaders))
    accounts = [responsible] if responsible else sorted(desk_officers)
    if kind in REPORTER_TOLD_KINDS and reporter:
        accounts.append(reporter)
    return list(dict.fromkeys(account for account in accounts if account))


def _in_quiet_night(local: datetime, timing: Timing) -> bool:
    clock = local.time()
    if timing.quiet_from <= timing.quiet_until:
        return timing.quiet_from <= clock < timing.quiet_until
    return clock >= timing.quiet_from or clock < timing.quiet_until


def _end_of_quiet_night(local: datetime, timing: Timing) -> datetime:
    end = local.replace(
        hour=timing.quiet_until.hour, minute=timing.quiet_until.minute, second=0, microsecond=0
    )
    return end if end > local else end + timedelta(days=1)


def send_not_before(
    *,
    created: datetime,
    severity: str,
    channel: str,
    calendar: WorkingCalendar,
    timing: Timing,
) -> datetime:
    """The earliest moment a notification may leave."""
    moment = created + timing.group_wait
    if severity != "critical":
        moment = calendar.next_office_moment(moment)
    if channel.startswith("zalo"):
        local = moment.astimezone(calendar.tz)
        if _in_quiet_night(local, timing):
            moment = _end_of_quiet_night(local, timing)
    return moment.astimezone(created.tzinfo)


def unreachable(
    accounts: Sequence[str], contacts: dict[str, OfficerRecord], enabled: EnabledChannels
) -> list[str]:
    """Receivers no channel reaches (unknown, inactive, or without any usable address)."""
    return [
        account
        for account in accounts
        if account not in contacts
        or not contacts[account].active
        or not deliveries(contacts[account], enabled)
    ]
