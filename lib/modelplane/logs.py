"""Structured logs: one JSON object per line, through the standard ``logging`` module.

``configure(level)`` installs ``JsonFormatter`` on the root logger (stderr by default).
``bind(logger, object=..., cluster=...)`` returns a logger whose every record carries
those keys; per-call keys go in ``extra={"fields": {...}}`` or as ``**kv`` to ``bind``.

Guarantees: every line is a complete JSON object with ``time`` (UTC, ISO 8601),
``level``, ``logger`` and ``message``, then the bound and per-call keys, then ``error``
(the formatted exception) when there is one. Values that are not JSON become strings,
so logging never raises because of a field.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (see the module docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, Mapping):
            out.update({str(k): v for k, v in fields.items() if str(k) not in out})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, sort_keys=False)


class BoundLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that adds fixed keys to every record, merged under per-call ``fields``."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        bound = dict(self.extra or {})
        call = extra.get(FIELDS)
        extra[FIELDS] = {**bound, **(call if isinstance(call, Mapping) else {})}
        kwargs["extra"] = extra
        return msg, kwargs


def bind(logger: logging.Logger | BoundLogger, **keys: Any) -> BoundLogger:
    """``logger`` with ``keys`` added to every record (on top of keys already bound)."""
    if isinstance(logger, BoundLogger):
        return BoundLogger(logger.logger, {**(logger.extra or {}), **keys})
    return BoundLogger(logger, keys)


def configure(level: int | str = logging.INFO, stream: IO[str] | None = None) -> None:
    """Sends every log record to ``stream`` (stderr) as JSON lines, replacing other handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
