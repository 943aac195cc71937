"""The fal-compatible HTTP API. ``create_app(settings)`` builds it; it never imports the model stack."""

from framecast.api.app import create_app

__all__ = ["create_app"]
