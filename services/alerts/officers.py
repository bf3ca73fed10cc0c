"""The officer directory as the alerts read it: one column list, one :class:`OfficerRecord`.

The planner (who is told), the weekly digest (the unit's leaders) and the dispatcher (the
recipient a message is addressed to) all read officers through here, so a column added to the
directory reaches every one of them. None of these functions commits.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts.channels.base import Recipient
from shared.directory import OFFICER_COLUMNS, OfficerRecord
from shared.models import Officer


def recipient_of_contact(contact: OfficerRecord) -> Recipient:
    """What a channel needs of the officer (no unit, role or active flag)."""
    return Recipient(
        account=contact.account,
        full_name=contact.full_name,
        email=contact.email,
        zalo_user_id=contact.zalo_user_id,
        phone=contact.phone,
    )


async def load_contacts(
    connection: AsyncConnection, *conditions: ColumnElement[bool]
) -> list[OfficerRecord]:
    """The officers matching every condition (all of them with none), as contacts."""
    rows = await connection.execute(select(*OFFICER_COLUMNS).where(*conditions))
    return [OfficerRecord.of(row) for row in rows.all()]


async def recipients_of(
    connection: AsyncConnection, accounts: Collection[str]
) -> dict[str, Recipient]:
    """The directory's record of each account (missing accounts are absent from the answer)."""
    if not accounts:
        return {}
    contacts = await load_contacts(connection, Officer.account.in_(sorted(accounts)))
    return {contact.account: recipient_of_contact(contact) for contact in contacts}


async def recipient_of(connection: AsyncConnection, account: str) -> Recipient | None:
    """The officer ``account`` as a :class:`Recipient`, or None when the directory lacks it."""
    return (await recipients_of(connection, [account])).get(account)
