from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer

KEY = "client-tests:s3cret-value"
OTHER_KEY = "someone-else:other-secret"
ENDPOINT = "fal-ai/pixverse/v5.5/text-to-video"


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server (API + one worker on tiny-wan) with two API keys, shared by the client tests."""
    data = tmp_path_factory.mktemp("client-server")
    env = {"FRAMECAST_API_KEYS": f"{KEY},{OTHER_KEY}"}
    with LiveServer(data, env=env) as live:
        live.wait_ready()
        yield live
