"""Log set-up for every Framecast process: plain text by default, or one JSON object a line
(``FRAMECAST_LOG_FORMAT=json``) carrying the request id of the HTTP request being served, for log pipelines."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from framecast.config import Settings
from framecast.errors import ConfigError

__all__ = ["JsonFormatter", "configure_logging", "request_state"]

LOG_FORMATS = ("text", "json")
REQUEST_ID_KEY = "fal_request_id"  # api/middleware.py's REQUEST_ID_STATE: the id the response will carry
# The serving request's ASGI state dict (shared, not copied: a handler that names its job id later is seen too).
request_state: ContextVar[dict[str, Any] | None] = ContextVar("framecast_request_state", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "process", "pid", "request_id"?, "exc"?, ...extra}``."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
            "pid": record.process,
        }
        state = request_state.get()
        if state is not None and state.get(REQUEST_ID_KEY):
            entry["request_id"] = state[REQUEST_ID_KEY]
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, process: str) -> None:
    """The root logger for this process; ``process`` names it in each line ("api", "worker")."""
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(f"FRAMECAST_LOG_FORMAT must be text or json, not {settings.log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        label = "" if process == "api" else f" {process}[{os.getpid()}]"
        handler.setFormatter(logging.Formatter(f"%(asctime)s{label} %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])  # a no-op if already set up
