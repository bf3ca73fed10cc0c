"""Tables. Columns that the rules and sweeps query are extracted; the full payloads stay as JSON.

Every column is a function of the set of facts received (plus the injected clock for
``ingested_at``), never of their arrival order: that is what makes replays and duplicate
deliveries harmless.
"""

from shared.models.access import AuditEntry, OfficerSession, SignInLink, StoredApiKey
from shared.models.alerting import AlertTrack, Digest, Notification, ZaloToken
from shared.models.facts import (
    DeadLetter,
    Dossier,
    DossierStatusSeen,
    Event,
    IngestPartition,
    ProgressStep,
)
from shared.models.judging import (
    Discrepancy,
    DiscrepancyHistory,
    FieldReport,
    Officer,
    ReconcilerState,
    ReconcileSchedule,
    Unit,
)
from shared.models.reporting import DossierLateness, KpiWeek, KpiWeekCount

__all__ = [
    "AlertTrack",
    "AuditEntry",
    "DeadLetter",
    "Digest",
    "Discrepancy",
    "DiscrepancyHistory",
    "Dossier",
    "DossierLateness",
    "DossierStatusSeen",
    "Event",
    "FieldReport",
    "IngestPartition",
    "KpiWeek",
    "KpiWeekCount",
    "Notification",
    "Officer",
    "OfficerSession",
    "ProgressStep",
    "ReconcileSchedule",
    "ReconcilerState",
    "SignInLink",
    "StoredApiKey",
    "Unit",
    "ZaloToken",
]
