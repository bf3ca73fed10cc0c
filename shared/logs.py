"""Structured logs: one JSON object per line, fields passed with ``extra={...}``.

Personal data (``ChuHoSo``, ``SoGiayToChuHoSo``) is never passed to a logger; these helpers
add no payloads of their own.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries log at warning at most: their debug output (aiosqlite, SQLAlchemy, httpx, …)
    # echoes statements and request bodies, which carry applicants' personal data.
    root.setLevel(max(logging.getLevelName(level.upper()), logging.WARNING))
    for ours in ("doisoat", "uvicorn.error", "alembic"):
        logging.getLogger(ours).setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
