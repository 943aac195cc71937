"""The one exception tree of Framecast.

FramecastError
 ├── ConfigError          bad settings; the process refuses to start (one sentence, no traceback)
 ├── InputError           a request the user must change (HTTP 422 at the API, a failed job in a worker)
 │    └── EgressRefused   a URL the server must not fetch or post to (egress.py): bad syntax or a non-public address
 ├── AuthError            missing or wrong API key (401)
 │    └── ForbiddenError  a valid key asking for another key's request (403)
 ├── NotFoundError        no such request or file (404)
 ├── ModelUnavailableError  the model's weights are not on this machine and cannot be fetched
 ├── RenderStopped        a render stopped between steps: cancelled, or past its deadline
 ├── QueueFull            a quota refuses a submit (429 with Retry-After)
 └── OutOfSpace           the server's disk (or database) is full (507), said without internal paths
"""

from __future__ import annotations


class FramecastError(Exception):
    """Root of every error Framecast raises on purpose. ``error_type`` is the fal ``error_type`` it maps to."""

    error_type = "internal_error"


class ConfigError(FramecastError):
    error_type = "configuration_error"


class InputError(FramecastError):
    error_type = "invalid_input"


class EgressRefused(InputError):
    """``reason`` names the rule that refused the URL, for the server's log; the message is for the user."""

    error_type = "egress_refused"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthError(FramecastError):
    error_type = "unauthorized"


class ForbiddenError(AuthError):
    error_type = "forbidden"


class NotFoundError(FramecastError):
    error_type = "not_found"


class ModelUnavailableError(FramecastError):
    error_type = "model_unavailable"


class RenderStopped(FramecastError):
    """Raised from inside the denoising loop; ``reason`` is ``"cancelled"`` or ``"request_timeout"``."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or f"render stopped: {reason}")
        self.reason = reason
        self.error_type = reason


class QueueFull(FramecastError):
    """A per-key or overall queue limit refuses a new request; ``retry_after`` is a hint in seconds."""

    error_type = "queue_full"

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutOfSpace(FramecastError):
    """The server's disk is full; ``retry_after`` is a hint in seconds."""

    error_type = "insufficient_storage"
    retry_after = 60

    def __init__(self, message: str = "The server has no space left on device; try again later") -> None:
        super().__init__(message)
