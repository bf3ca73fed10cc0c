"""What an alert says, in Vietnamese, and how each channel shows it.

- :mod:`.wording`: one discrepancy → the ``content`` JSON stored on its outbox rows
  (:func:`alert_content`), phrased per kind when the row is written;
- :mod:`.views`: display strings of a stored alert (:func:`item_view`); :mod:`.digest_views`
  those of a weekly digest (:func:`digest_view`);
- :mod:`.rendering`: one message per recipient and channel (:func:`render`): email from the
  Jinja2 templates, with the Zalo OA text and ZNS ``template_data`` of :mod:`.zalo_messages`;
- :mod:`.formatting`: the moment, number and status formatters they share.

The names below are re-exported for callers outside the alerts package (the benchmark).
"""

from __future__ import annotations

from services.alerts.content.digest_views import digest_view
from services.alerts.content.rendering import render
from services.alerts.content.views import item_view
from services.alerts.content.wording import alert_content

__all__ = ["alert_content", "digest_view", "item_view", "render"]
