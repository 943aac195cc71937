from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import httpx
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


def probe_mp4(url: str, dest: Path, verify: str | bool = False) -> dict:
    """Download a result's video and read its real size, frame count and codec back with PyAV."""
    response = httpx.get(url, timeout=30, verify=verify)
    response.raise_for_status()
    dest.write_bytes(response.content)
    with av.open(str(dest)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": frames,
            "fps": float(stream.average_rate),
            "codec": stream.codec_context.name,
            "bytes": len(response.content),
        }
