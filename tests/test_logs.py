"""JSON logs (logs.py, api/access_log.py): one object a line, carrying the id the response carries."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framecast.api import create_app
from framecast.config import Settings
from framecast.errors import ConfigError
from framecast.logs import JsonFormatter, configure_logging

SUBMIT = "/queue/fal-ai/pixverse/v5.5/text-to-video"


def test_with_json_logs_every_request_is_one_line_with_its_request_id(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, log_format="json")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("api"))
    access = logging.getLogger("framecast.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with TestClient(create_app(settings)) as client:
            submitted = client.post(SUBMIT, json={"prompt": "logged", "resolution": "360p"})
            health = client.get("/health")
    finally:
        access.removeHandler(handler)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", SUBMIT, 200),
        ("GET", "/health", 200),
    ]
    # The submit's line names the job it created, exactly as the response header does.
    assert lines[0]["request_id"] == submitted.json()["request_id"] == submitted.headers["x-fal-request-id"]
    assert lines[1]["request_id"] == health.headers["x-fal-request-id"]
    assert all(e["level"] == "INFO" and e["process"] == "api" and e["duration_ms"] >= 0 for e in lines)


def test_an_unknown_log_format_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="text or json"):
        configure_logging(Settings.from_env({}, data_dir=tmp_path, log_format="xml"), "api")
