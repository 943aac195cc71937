"""S3 storage against a real S3-protocol server on localhost (moto's server: HTTP, SigV4, presigned URLs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import av
import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from framecast.api import create_app
from framecast.config import Settings
from framecast.engine.instant import InstantEngine
from framecast.errors import ConfigError
from framecast.jobs import JobStatus, JobStore
from framecast.storage import S3Storage, new_output_key, open_storage, storage_for
from framecast.worker import Worker

BUCKET = "framecast-videos"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield BUCKET
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "render.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000)
    return path


def s3(endpoint: str, **kwargs) -> S3Storage:
    storage = open_storage(f"s3://{BUCKET}/renders/v1", endpoint_url=endpoint, **kwargs)
    assert isinstance(storage, S3Storage)
    return storage


def test_put_stores_the_object_under_the_prefix_with_its_content_type(endpoint, bucket, source):
    storage = s3(endpoint)
    key = new_output_key("job-1", 1)

    assert storage.put(key, source, "video/mp4") == source.stat().st_size
    head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket=bucket, Key=f"renders/v1/{key}")
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == source.stat().st_size
    assert storage.local_path(key) is None


def test_the_result_url_is_the_files_route_which_redirects_to_a_fresh_presigned_url(endpoint, bucket, source):
    storage = s3(endpoint, url_seconds=120)
    key = new_output_key("job-2", 1)
    storage.put(key, source, "video/mp4")

    assert storage.url(key, "https://api.example.com/") == f"https://api.example.com/files/{key}"
    target = storage.redirect_url(key)
    assert target is not None
    query = parse_qs(urlparse(target).query)
    if "X-Amz-Expires" in query:  # SigV4 presigning: a lifetime
        assert query["X-Amz-Expires"] == ["120"]
    else:  # SigV2 query signing: an absolute expiry time
        assert time.time() + 100 < int(query["Expires"][0]) <= time.time() + 121
    assert httpx.get(target).content == source.read_bytes()
    assert storage.redirect_url(new_output_key("job-2", 2)) is None  # no such object: a 404, not a dead link
    assert storage.redirect_url("../escape") is None


def test_a_public_url_links_to_the_object_directly(endpoint, bucket):
    storage = s3(endpoint, public_url="https://cdn.example.com/")
    assert storage.url("tok/job-a1.mp4", "https://api.example.com") == (
        "https://cdn.example.com/renders/v1/tok/job-a1.mp4"
    )


def test_delete_removes_the_object(endpoint, bucket, source):
    storage = s3(endpoint)
    storage.put("tok/job-a1.mp4", source, "video/mp4")
    storage.delete("tok/job-a1.mp4")
    assert storage.redirect_url("tok/job-a1.mp4") is None
    storage.delete("tok/job-a1.mp4")  # deleting twice is not an error (a retried housekeeping pass)


def test_a_bucket_that_cannot_be_used_is_a_configuration_error_at_start(endpoint, bucket):
    with pytest.raises(ConfigError, match="'missing-bucket' at http://127.0.0.1"):
        open_storage("s3://missing-bucket/x", endpoint_url=endpoint)
    with pytest.raises(ConfigError, match="names no bucket"):
        open_storage("s3:///x", endpoint_url=endpoint)


def test_a_job_rendered_to_s3_is_fetched_through_the_api_like_a_local_one(endpoint, bucket, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data",
        storage_url=f"s3://{bucket}/jobs",
        s3_endpoint_url=endpoint,
        insecure_no_auth=True,
    ).resolved()
    store = JobStore.open(settings.database_url)
    storage = storage_for(settings)
    try:
        with TestClient(
            create_app(settings, store=store, storage=storage), base_url="http://testserver"
        ) as client:
            submitted = client.post(
                "/queue/fal-ai/pixverse/v5.5/text-to-video", json={"prompt": "a red fox", "seed": 7}
            ).json()
            assert Worker(settings, store, storage, InstantEngine(steps=1)).run_once()
            assert store.get(submitted["request_id"]).status is JobStatus.COMPLETED  # type: ignore[union-attr]
            video = client.get(submitted["response_url"]).json()["video"]
            path = video["url"].removeprefix("http://testserver")

            redirect = client.get(path, follow_redirects=False)
            assert redirect.status_code == 307
            assert client.head(path, follow_redirects=False).status_code == 307
            downloaded = httpx.get(redirect.headers["location"])
            assert downloaded.status_code == 200 and len(downloaded.content) == video["file_size"]
            mp4 = tmp_path / "downloaded.mp4"
            mp4.write_bytes(downloaded.content)
            with av.open(str(mp4)) as container:
                assert container.streams.video[0].codec_context.name == "h264"
            assert client.get("/files/nope/missing.mp4").status_code == 404
    finally:
        store.close()
