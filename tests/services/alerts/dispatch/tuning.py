"""Dispatcher settings for tests: the deployment's defaults, with what a test tunes.

Built from :class:`AlertsSettings` as the worker builds them, so a test never carries defaults of
its own (``_env_file=None``: a developer's ``.env`` must not change a test).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.alerts.config import AlertsSettings, DispatchSettings


def dispatch_settings(**tuning: Any) -> DispatchSettings:
    """``AlertsSettings().dispatch`` with ``tuning`` (any :class:`DispatchSettings` field)."""
    return replace(AlertsSettings(_env_file=None).dispatch, **tuning)
