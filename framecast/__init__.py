"""Framecast: self-hosted text-to-video behind fal.ai's pixverse/v5.5 text-to-video API."""

__version__ = "0.1.0"
