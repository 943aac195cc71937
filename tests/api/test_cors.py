"""CORS: off by default; with FRAMECAST_CORS_ORIGINS a browser app on a listed origin can call the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from framecast.api import create_app
from tests.api.conftest import SUBMIT, make_settings

APP_ORIGIN = "https://app.example.com"


def client_with(tmp_path: Path, **settings) -> TestClient:
    return TestClient(create_app(make_settings(tmp_path, **settings)), base_url="http://testserver")


def test_without_origins_configured_no_cors_headers_are_sent(tmp_path):
    with client_with(tmp_path) as client:
        response = client.get("/health", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_a_listed_origin_passes_the_preflight_and_reads_the_request_id(tmp_path):
    with client_with(tmp_path, cors_origins=f"{APP_ORIGIN}, https://other.example.com") as client:
        preflight = client.options(
            SUBMIT,
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-fal-request-timeout",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert all(h in allowed for h in ("authorization", "content-type", "x-fal-request-timeout"))

        submitted = client.post(SUBMIT, json={"prompt": "a fox"}, headers={"Origin": APP_ORIGIN})
        assert submitted.status_code == 200
        assert submitted.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "x-fal-request-id" in submitted.headers["access-control-expose-headers"].lower()

        stranger = client.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in stranger.headers


def test_a_wildcard_allows_any_origin(tmp_path):
    with client_with(tmp_path, cors_origins="*") as client:
        response = client.get("/health", headers={"Origin": "https://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"
