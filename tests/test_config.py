"""Settings from FRAMECAST_* variables keep their declared types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from framecast.config import Settings
from framecast.errors import ConfigError


@dataclass(frozen=True)
class _WithOptional(Settings):
    limit: int | None = None
    ratio: float | None = None


def test_every_field_arrives_as_its_declared_type():
    env = {
        "FRAMECAST_PORT": "9000",
        "FRAMECAST_COMPILE": "yes",
        "FRAMECAST_LEASE_SECONDS": "12.5",
        "FRAMECAST_DATA_DIR": "/tmp/fc",
        "FRAMECAST_WEBHOOK_BACKOFF_SECONDS": "1,2.5",
        "FRAMECAST_API_KEYS": "a:b",
    }
    settings = Settings.from_env(env)
    assert settings.port == 9000 and settings.compile is True and settings.lease_seconds == 12.5
    assert settings.data_dir == Path("/tmp/fc") and settings.webhook_backoff_seconds == (1.0, 2.5)
    assert dict(settings.api_keys) == {"a": "b"}


def test_an_optional_number_arrives_as_a_number_or_none_never_as_a_string():
    given = _WithOptional.from_env({"FRAMECAST_LIMIT": "20", "FRAMECAST_RATIO": "0.5"})
    assert given.limit == 20 and isinstance(given.limit, int) and given.ratio == 0.5
    assert _WithOptional.from_env({"FRAMECAST_LIMIT": ""}).limit is None
    with pytest.raises(ConfigError, match="FRAMECAST_LIMIT='many'"):
        _WithOptional.from_env({"FRAMECAST_LIMIT": "many"})


def test_a_malformed_boolean_or_number_names_the_variable():
    with pytest.raises(ConfigError, match="FRAMECAST_COMPILE='maybe'"):
        Settings.from_env({"FRAMECAST_COMPILE": "maybe"})
    with pytest.raises(ConfigError, match="FRAMECAST_PORT='http'"):
        Settings.from_env({"FRAMECAST_PORT": "http"})
