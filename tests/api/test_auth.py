"""`Authorization: Key id:secret` against the configured keys; a key cannot touch another key's requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framecast.api import create_app
from framecast.api.auth import KeyChecker
from framecast.errors import AuthError, ConfigError
from framecast.jobs.store import JobStore
from tests.api.conftest import (
    KEY_A,
    KEY_B,
    SMALL,
    SUBMIT,
    SYNC,
    auth,
    make_settings,
    requests_path,
    run_job,
    submit,
)


@pytest.fixture
def keyed(tmp_path: Path, store: JobStore) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, api_keys={"alice": "alice-secret", "bob": "bob-secret"})
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def test_no_keys_on_loopback_is_open_and_owner_is_empty(client: TestClient, store: JobStore) -> None:
    job = store.get(submit(client)["request_id"])

    assert job is not None and job.owner == ""


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Key alice:wrong-secret",
        "Key mallory:alice-secret",
        "Bearer alice:alice-secret",
        "Key alice",
        "Key :alice-secret",
        "Key",
    ],
)
def test_missing_or_wrong_key_is_401_in_fal_shape(keyed: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    for response in (
        keyed.post(SUBMIT, json=SMALL, headers=headers),
        keyed.post(SYNC, json=SMALL, headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error_type"] == "unauthorized"
        assert response.headers["x-fal-error-type"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Key"
        assert response.headers["x-fal-request-id"]


def test_the_owner_of_a_request_is_its_key_id(keyed: TestClient, store: JobStore) -> None:
    job = store.get(submit(keyed, headers=auth(KEY_A))["request_id"])

    assert job is not None and job.owner == "alice"


def test_key_b_cannot_read_stream_fetch_or_cancel_key_a_requests(keyed: TestClient, store: JobStore) -> None:
    request_id = submit(keyed, headers=auth(KEY_A))["request_id"]
    run_job(store)
    other = auth(KEY_B)

    answers = [
        keyed.get(requests_path(request_id, "/status"), headers=other),
        keyed.get(requests_path(request_id, "/status/stream"), headers=other),
        keyed.get(requests_path(request_id), headers=other),
        keyed.put(requests_path(request_id, "/cancel"), headers=other),
    ]

    for response in answers:
        assert response.status_code == 403, response.text
        assert response.json() == {
            "detail": "This request belongs to another API key",
            "error_type": "forbidden",
        }
    assert keyed.get(requests_path(request_id), headers=auth(KEY_A)).status_code == 200


def test_status_and_result_without_a_key_are_401_not_a_leak(keyed: TestClient) -> None:
    request_id = submit(keyed, headers=auth(KEY_A))["request_id"]

    assert keyed.get(requests_path(request_id, "/status")).status_code == 401
    assert keyed.put(requests_path(request_id, "/cancel")).status_code == 401


def test_health_openapi_jwks_and_files_need_no_key(keyed: TestClient) -> None:
    for path in ("/health", "/openapi.json", "/.well-known/jwks.json"):
        assert keyed.get(path).status_code == 200
    assert keyed.get("/files/none/such.mp4").status_code == 404


def test_key_checker_accepts_only_exact_secrets() -> None:
    check = KeyChecker({"id": "secret"})

    assert check("Key id:secret").owner == "id"
    assert check("key  id:secret ").owner == "id"  # scheme is case-insensitive, as HTTP says
    for header in ("Key id:secre", "Key id:secrets", "Key id:SECRET", "Key id2:secret"):
        with pytest.raises(AuthError):
            check(header)


def test_a_secret_containing_a_colon_works() -> None:
    assert KeyChecker({"id": "se:cret"})("Key id:se:cret").owner == "id"


def test_non_loopback_bind_without_keys_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--insecure-no-auth"):
        make_settings(tmp_path, host="0.0.0.0").check_bind_is_safe()
    make_settings(tmp_path, host="0.0.0.0", insecure_no_auth=True).check_bind_is_safe()
    make_settings(tmp_path, host="0.0.0.0", api_keys={"a": "b"}).check_bind_is_safe()
    make_settings(tmp_path, host="::1").check_bind_is_safe()


def test_health_says_whether_a_key_is_needed(keyed: TestClient, client: TestClient) -> None:
    assert keyed.get("/health").json()["auth"] is True
    assert client.get("/health").json()["auth"] is False
