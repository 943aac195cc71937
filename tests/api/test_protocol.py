"""Wire rules of the submit body, the request headers and the `logs` parameter: every failure is a 4xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from framecast.jobs.models import Priority
from framecast.jobs.store import JobStore
from tests.api.conftest import SMALL, SUBMIT, SYNC, requests_path, submit
from tests.fake_dns import FakeDNS


def detail_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["x-fal-error-type"] == "validation_error"
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert {"type", "loc", "msg", "input"} <= item.keys()
    return detail


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({}, ["body", "prompt"], "missing"),
        ({"prompt": ""}, ["body", "prompt"], "string_blank"),
        ({"prompt": "  \n\t "}, ["body", "prompt"], "string_blank"),
        ({"prompt": "a" * 2049}, ["body", "prompt"], "string_too_long"),
        ({"prompt": "é" * 1025}, ["body", "prompt"], "string_too_long"),  # 2050 bytes, 1025 characters
        ({"prompt": "x", "negative_prompt": "🎥" * 513}, ["body", "negative_prompt"], "string_too_long"),
        ({"prompt": 5}, ["body", "prompt"], "string_type"),
        ({"prompt": "x", "aspect_ratio": "2:1"}, ["body", "aspect_ratio"], "enum"),
        ({"prompt": "x", "resolution": "4k"}, ["body", "resolution"], "enum"),
        ({"prompt": "x", "duration": "7"}, ["body", "duration"], "enum"),
        ({"prompt": "x", "duration": 7}, ["body", "duration"], "enum"),
        ({"prompt": "x", "duration": True}, ["body", "duration"], "enum"),
        (
            {"prompt": "x", "resolution": "1080p", "duration": "10"},
            ["body", "duration"],
            "duration_resolution",
        ),
        ({"prompt": "x", "style": "pixel"}, ["body", "style"], "enum"),
        ({"prompt": "x", "thinking_type": "maybe"}, ["body", "thinking_type"], "enum"),
        ({"prompt": "x", "seed": -1}, ["body", "seed"], "greater_than_equal"),
        ({"prompt": "x", "seed": 2**32}, ["body", "seed"], "less_than_equal"),
        ({"prompt": "x", "seed": 1.5}, ["body", "seed"], "int_type"),
        ({"prompt": "x", "seed": True}, ["body", "seed"], "int_type"),
        ({"prompt": "x", "seed": "abc"}, ["body", "seed"], "int_parsing"),
        (
            {"prompt": "x", "generate_audio_switch": "perhaps"},
            ["body", "generate_audio_switch"],
            "bool_parsing",
        ),
    ],
)
def test_every_validation_rule_answers_422_in_fastapi_shape(
    shared_client: TestClient, body: dict, loc: list, error_type: str
) -> None:
    detail = detail_of(shared_client.post(SUBMIT, json=body))

    assert detail[0]["loc"] == loc
    assert detail[0]["type"] == error_type


def test_sync_route_validates_the_same_way(shared_client: TestClient) -> None:
    detail = detail_of(
        shared_client.post(SYNC, json={"prompt": "x", "resolution": "1080p", "duration": "10"})
    )

    assert detail[0]["loc"] == ["body", "duration"]
    assert detail[0]["ctx"] == {"resolution": "1080p"}


def test_prompt_of_exactly_2048_utf8_bytes_is_accepted(client: TestClient, store: JobStore) -> None:
    prompt = "é" * 1024  # 2048 bytes
    job = store.get(submit(client, {"prompt": prompt})["request_id"])

    assert job is not None and job.input is not None and job.input["prompt"] == prompt


def test_integer_duration_is_read_as_the_string_enum_and_unknown_fields_are_ignored(
    client: TestClient, store: JobStore
) -> None:
    body = {"prompt": "x", "duration": 5, "not_a_field": {"nested": 1}, "image_url": "http://x"}
    job = store.get(submit(client, body)["request_id"])

    assert job is not None and job.input is not None
    assert job.input["duration"] == "5"
    assert "not_a_field" not in job.input and "image_url" not in job.input


def test_defaults_are_stored_with_the_input(client: TestClient, store: JobStore) -> None:
    job = store.get(submit(client, {"prompt": "x"})["request_id"])

    assert job is not None
    assert job.input == {
        "prompt": "x",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": "5",
        "negative_prompt": "",
        "style": None,
        "seed": None,
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
        "thinking_type": None,
    }


@pytest.mark.parametrize("path", [SUBMIT, SYNC])
def test_a_body_that_is_not_json_is_422_json_invalid(shared_client: TestClient, path: str) -> None:
    response = shared_client.post(path, content=b"{not json", headers={"content-type": "application/json"})

    assert detail_of(response)[0]["type"] == "json_invalid"


def test_an_empty_body_and_invalid_utf8_are_422(shared_client: TestClient) -> None:
    for content in (b"", b'{"prompt": "\xff\xfe"}'):
        response = shared_client.post(SUBMIT, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "content",
    [
        b'{"prompt": "x", "seed": 1e400}',
        b'{"prompt": "x", "seed": Infinity}',
        b'{"prompt": "x", "seed": NaN}',
        b'{"prompt": "\\ud800"}',
        b'{"prompt": "x", "negative_prompt": "a\\udfff"}',
    ],
)
def test_json_that_python_parses_but_is_not_finite_or_not_text_is_422(
    shared_client: TestClient, content: bytes
) -> None:
    response = shared_client.post(SUBMIT, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text
    assert detail_of(response)[0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", [[SMALL], "a string", 42, None])
def test_json_that_is_not_an_object_is_422_at_body(shared_client: TestClient, body: object) -> None:
    response = shared_client.post(
        SUBMIT, content=json.dumps(body), headers={"content-type": "application/json"}
    )

    assert detail_of(response)[0]["loc"] == ["body"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps(SMALL)),
        ("multipart/form-data", json.dumps(SMALL)),
        ("application/x-www-form-urlencoded", "prompt=a+fox&resolution=360p"),  # a real form
    ],
)
def test_a_wrong_content_type_is_415(shared_client: TestClient, content_type: str, body: str) -> None:
    response = shared_client.post(SUBMIT, content=body, headers={"content-type": content_type})

    assert response.status_code == 415
    assert response.json()["error_type"] == "unsupported_media_type"


@pytest.mark.parametrize("headers", [{}, {"content-type": "application/x-www-form-urlencoded"}])
def test_a_json_body_without_a_json_content_type_is_accepted_as_fals_curl_example_sends_it(
    shared_client: TestClient, headers: dict[str, str]
) -> None:
    # `curl -d '{...}'` with no -H sends the form type; fal's own queue examples do so, and fal takes them.
    response = shared_client.post(SUBMIT, content=json.dumps(SMALL).encode(), headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "IN_QUEUE"


def test_a_body_without_content_type_that_is_not_json_is_422_json_invalid(shared_client: TestClient) -> None:
    assert detail_of(shared_client.post(SUBMIT, content=b"{not json"))[0]["type"] == "json_invalid"


def test_json_with_a_charset_parameter_is_accepted(shared_client: TestClient) -> None:
    response = shared_client.post(
        SUBMIT, content=json.dumps(SMALL), headers={"content-type": "application/json; charset=utf-8"}
    )

    assert response.status_code == 200


def test_a_body_over_the_limit_is_413_by_content_length_and_by_stream(shared_client: TestClient) -> None:
    big = json.dumps({"prompt": "x", "pad": "y" * 70_000})
    declared = shared_client.post(SUBMIT, content=big, headers={"content-type": "application/json"})

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield big[:40_000].encode()
        yield big[40_000:].encode()

    streamed = shared_client.post(SUBMIT, content=chunks(), headers={"content-type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {
            "detail": "Request body is larger than 65536 bytes",
            "error_type": "payload_too_large",
        }
        assert response.headers["x-fal-error-type"] == "payload_too_large"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Fal-Queue-Priority", "urgent"),
        ("X-Fal-Request-Timeout", "soon"),
        ("X-Fal-Request-Timeout", "-3"),
        ("X-Fal-Request-Timeout", "nan"),
        ("X-Fal-Store-IO", "maybe"),
        ("X-Fal-Object-Lifecycle-Preference", "3600"),
        ("X-Fal-Object-Lifecycle-Preference", '{"expiration_duration_seconds": -1}'),
        ("X-Fal-Object-Lifecycle-Preference", '{"expiration_duration_seconds": "60"}'),
        ("X-Fal-Object-Lifecycle-Preference", '{"initial_acl": "public"}'),
        ("X-Fal-Object-Lifecycle-Preference", "[]"),
        ("X-Fal-No-Retry", "maybe"),
    ],
)
def test_bad_fal_header_values_are_422_at_the_header(
    shared_client: TestClient, header: str, value: str
) -> None:
    detail = detail_of(shared_client.post(SUBMIT, json=SMALL, headers={header: value}))

    assert detail[0]["loc"] == ["header", header.lower()]
    assert detail[0]["input"] == value


def test_fal_headers_are_stored_on_the_job(client: TestClient, store: JobStore) -> None:
    headers = {
        "X-Fal-Queue-Priority": "low",
        "X-Fal-Request-Timeout": "12.5",
        "X-Fal-Store-IO": "0",
        "X-Fal-Object-Lifecycle-Preference": '{"expiration_duration_seconds": 600}',
        "X-Fal-No-Retry": "1",
    }
    job = store.get(submit(client, headers=headers)["request_id"])
    plain = store.get(submit(client)["request_id"])

    assert job is not None and plain is not None
    assert job.no_retry is True and plain.no_retry is False
    assert job.priority is Priority.low
    assert job.store_io is False
    assert job.file_ttl_seconds == 600
    assert job.start_deadline is not None
    assert (job.start_deadline - job.created_at).total_seconds() == pytest.approx(12.5)
    assert job.base_url == "http://testserver"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ('{"initial_acl": {"default": "forbid", "rules": [{"user": "u", "decision": "allow"}]}}', None),
        ('{"expiration_duration_seconds": 60, "initial_acl": {"default": "hide"}}', 60),
        ("{}", None),
    ],
)
def test_a_lifecycle_preference_with_only_an_acl_is_accepted(
    client: TestClient, store: JobStore, value: str, seconds: int | None
) -> None:
    # What @fal-ai/client sends for storageSettings: {initialAcl} alone, or with expiresIn: "never".
    job = store.get(submit(client, headers={"X-Fal-Object-Lifecycle-Preference": value})["request_id"])

    assert job is not None and job.file_ttl_seconds == seconds


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/queue/fal-ai/pixverse/v5.5/text-to-video",  # the API itself
        "http://localhost:5432/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0.0.0.0:8000/",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://internal.example/hook",  # a name that resolves to a private address
        "http://nowhere.example/hook",  # a name that does not resolve
        "http://example.com/a\r\nX-Injected: 1",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_a_webhook_the_server_must_not_reach_is_a_422_and_queues_nothing(
    client: TestClient, store: JobStore, dns: FakeDNS, url: str
) -> None:
    dns.set("internal.example", "10.20.30.40")

    detail = detail_of(client.post(SUBMIT, json=SMALL, params={"fal_webhook": url}))

    assert detail[0]["loc"] == ["query", "fal_webhook"]
    assert detail[0]["msg"].startswith("Invalid webhook: ")
    assert store.claim("w", 30) is None


def test_a_webhook_must_be_an_http_url(client: TestClient, store: JobStore) -> None:
    bad = client.post(SUBMIT, json=SMALL, params={"fal_webhook": "ftp://example.com/hook"})
    good = submit(client, params={"fal_webhook": "https://example.com/hook?x=1"})

    assert detail_of(bad)[0]["loc"] == ["query", "fal_webhook"]
    job = store.get(good["request_id"])
    assert job is not None and job.webhook_url == "https://example.com/hook?x=1"


@pytest.mark.parametrize(
    ("value", "has_logs"),
    [("1", True), ("true", True), ("0", False), ("false", False), ("True", True), (None, False)],
)
def test_logs_parameter_accepts_the_four_client_forms(
    client: TestClient, store: JobStore, value: str | None, has_logs: bool
) -> None:
    request_id = submit(client)["request_id"]
    job = store.claim("w", 30)
    assert job is not None
    store.append_log(request_id, "step 1/4")
    params = {} if value is None else {"logs": value}

    body = client.get(requests_path(request_id, "/status"), params=params).json()

    assert body["status"] == "IN_PROGRESS"
    if has_logs:
        assert [entry["message"] for entry in body["logs"]] == ["step 1/4"]
    else:
        assert body["logs"] is None


def test_an_unknown_logs_value_is_422(shared_client: TestClient) -> None:
    request_id = submit(shared_client)["request_id"]

    detail = detail_of(shared_client.get(requests_path(request_id, "/status"), params={"logs": "yes please"}))

    assert detail[0]["loc"] == ["query", "logs"]
