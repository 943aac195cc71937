"""Who is calling: fal's ``Authorization: Key <key_id>:<key_secret>`` checked against the configured keys."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from framecast.errors import AuthError, ForbiddenError
from framecast.jobs.models import Job

OPEN_OWNER = ""  # the owner of every request while no keys are configured


@dataclass(frozen=True)
class Principal:
    """The caller: a key id, or ``OPEN_OWNER`` when the server runs without keys."""

    owner: str

    def check_owns(self, job: Job) -> None:
        # 403, not 404: ids are UUID4, so saying "exists" leaks nothing guessable, and the caller learns the
        # true reason (wrong key) instead of hunting for a request that is there.
        if not hmac.compare_digest(job.owner.encode(), self.owner.encode()):
            raise ForbiddenError("This request belongs to another API key")


class KeyChecker:
    """Resolves an ``Authorization`` header to a ``Principal``, comparing secrets in constant time."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = {key_id: secret.encode() for key_id, secret in keys.items()}

    def __call__(self, authorization: str | None) -> Principal:
        if not self._keys:
            return Principal(OPEN_OWNER)
        key_id, secret = _parse(authorization)
        expected = self._keys.get(key_id)
        # Compare against something even for an unknown id, so timing does not reveal which ids exist.
        ok = hmac.compare_digest(secret.encode(), expected if expected is not None else b"\0" * 32)
        if expected is None or not ok:
            raise AuthError("Invalid API key")
        return Principal(key_id)


def _parse(authorization: str | None) -> tuple[str, str]:
    if not authorization:
        raise AuthError("Missing Authorization header: send 'Authorization: Key <key_id>:<key_secret>'")
    scheme, _, credentials = authorization.strip().partition(" ")
    key_id, sep, secret = credentials.strip().partition(":")
    if scheme.lower() != "key" or not sep or not key_id or not secret:
        raise AuthError("Malformed Authorization header: expected 'Key <key_id>:<key_secret>'")
    return key_id, secret
