"""One settings object, read once from ``FRAMECAST_*`` variables (and CLI flags) and passed down explicitly."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from framecast.errors import ConfigError
from framecast.gpus import parse_gpus

ENV_PREFIX = "FRAMECAST_"


def _parse_keys(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or not secret:
            raise ConfigError(f"API key entry {key_id!r} is not of the form key_id:key_secret")
        keys[key_id] = secret
    return keys


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a Framecast process. Field name ``x`` is read from ``FRAMECAST_X``."""

    data_dir: Path = Path("./data")
    database_url: str = ""  # default: sqlite:///<data_dir>/framecast.db
    storage_url: str = ""  # default: file://<data_dir>/files; or s3://bucket/prefix
    storage_public_url: str = (
        ""  # s3: a public base URL for the bucket (or its CDN); default: presigned redirects
    )
    s3_endpoint_url: str = ""  # s3: a store other than AWS (MinIO, R2, Ceph, ...)
    s3_url_seconds: int = 3600  # s3: how long a presigned download URL stays valid after its redirect
    public_url: str = ""  # base URL for output links; default: the request's own host
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: Mapping[str, str] = field(default_factory=dict)  # key_id -> secret
    api_keys_file: str = ""
    insecure_no_auth: bool = False
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    workers: int = 1
    # Several devices per request (gpus.py): "0,1,2,3", "0-7" or "cpu:2"; cut into groups of group_size (0: one
    # group), one worker process per group, its ranks rendering each request together (docs/deploy.md).
    gpus: str = ""
    group_size: int = 0
    # How a group splits a request (engine/parallel/rule.py): auto (the rule), or a layout such as "cfg2",
    # "ulysses2", "cfg2,ulysses4", "ulysses4,ring2".
    parallel: str = "auto"
    model: str = "auto"
    model_path: str = ""  # a local folder holding the preset's diffusers weights
    offload: str = "auto"  # none | model | sequential | group | auto
    # Creative controls (engine/styles.py, prompting.py, audio.py)
    style_loras: str = ""  # "[preset:]style=path_or_repo,...": a LoRA per style, swapped without reloading
    prompt_llm: str = "Qwen/Qwen2.5-1.5B-Instruct"  # thinking_type's LLM: repo id, folder or endpoint model
    prompt_llm_url: str = ""  # an OpenAI-compatible server to use instead of the local LLM
    prompt_llm_api_key: str = ""
    audio_model: str = "stabilityai/stable-audio-open-1.0"  # the audio stage's weights: repo or folder
    # The upscaler stage's weights (outputs above a preset's native size): repo, folder, or "tiny" (test model)
    upscaler_model: str = "kandinskylab/Kandinsky-6.0-VSR-distilled2steps-5s-Diffusers"
    device: str = "auto"  # cuda | cpu | auto
    # Regional torch.compile of Wan's transformer blocks on CUDA: faster steps, minutes of warm-up at start-up
    # (the default request's size; other sizes compile on their first request).
    compile: bool = False
    # Which shapes compile at start-up (engine/buckets.py): default (16:9), all, or aspect ratios "16:9,9:16".
    compile_warmup: str = "default"
    # FP8 (e4m3) matmuls in the transformer blocks on CUDA >= 8.9 (engine/fp8.py): faster, and it changes the
    # video a little, so it is opt-in.
    fp8: bool = False
    # Wan's VAE: float32 (its authors' choice, the default) or bfloat16 (opt-in: ~1.5x faster decode measured on
    # an H200, channels-last on top; the pixels change slightly).
    vae_dtype: str = "float32"
    # Clips longer than a model's longest: native (its real-motion method: windows, chaining or shots) or stretch
    # (opt-in, for speed: one clip spread over the duration, motion slowed and frames blended).
    long_clips: str = "native"
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    max_attempts: int = 3
    poll_seconds: float = 0.2  # how often an idle worker looks for work
    sync_timeout_seconds: float = 3600.0  # how long the sync route waits for its job
    max_body_bytes: int = 64 * 1024
    retention_days: float = 0.0  # finished requests (and their files) older than this are deleted; 0: kept
    # Origins allowed to call the API from a browser: "https://app.example.com,..." or "*"; none by default.
    cors_origins: str = ""
    webhook_attempts: int = 10
    # Delays before each retry; fal spreads 10 tries over about 2 hours.
    webhook_backoff_seconds: tuple[float, ...] = (15, 60, 120, 300, 600, 900, 1200, 1800, 2400)
    webhook_timeout_seconds: float = 15.0
    webhook_key_file: str = ""  # Ed25519 private key (PEM); default: <data_dir>/webhook-ed25519.pem
    # Where the server may connect on a user's behalf (egress.py): public addresses, plus these comma-separated
    # CIDRs, e.g. "127.0.0.1/32" for a webhook receiver on this host.
    webhook_allow: str = ""
    webhook_concurrency: int = 32  # webhook deliveries in flight at once
    webhook_per_host: int = 4  # of which at most this many to one host
    # Connection limits (api/connections.py).
    max_header_bytes: int = 32 * 1024  # request line and headers; past it: 431
    header_timeout_seconds: float = (
        5.0  # a request's headers must arrive within this of the connection being ready
    )
    body_timeout_seconds: float = 10.0  # its body within this of the end of its headers; past either: 408
    max_connections: int = 1000  # open connections, kept below the file descriptor limit; past it: 503
    max_streams: int = 256  # concurrent status streams (SSE); past it: 503 with Retry-After
    log_level: str = "info"
    # -- service under faults (issue 11, docs/operations.md) --
    log_format: str = "text"  # text | json (one JSON object a line, with the request id)
    max_queued_per_key: int = 1000  # waiting requests per API key; past it submit answers 429 (0: no limit)
    max_queued: int = 20000  # waiting requests in all; past it submit answers 429 (0: no limit)
    max_running_per_key: int = 0  # rendering at once per API key; further ones wait their turn (0: no limit)
    store_retry_seconds: float = 120.0  # how long a worker retries an unreachable database before giving up
    queue_position_seconds: float = 0.5  # queue positions come from a snapshot at most about this old
    stop_grace_seconds: float = (
        20.0  # how long a stopping worker may take to hand its job back before SIGKILL
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        hints = typing.get_type_hints(cls)  # real types: the annotations are strings (PEP 563)
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, hints[f.name], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        return settings.resolved()

    def resolved(self) -> Settings:
        """Fill the defaults that depend on other fields, and merge the key file into ``api_keys``."""
        data_dir = Path(self.data_dir)
        keys = dict(self.api_keys)
        if self.api_keys_file:
            try:
                keys.update(_parse_keys(Path(self.api_keys_file).read_text()))
            except OSError as exc:
                raise ConfigError(f"cannot read API key file {self.api_keys_file}: {exc.strerror}") from exc
        parse_gpus(self.gpus, self.group_size)  # a malformed device list fails at start-up, in one line
        return dataclasses.replace(
            self,
            data_dir=data_dir,
            database_url=self.database_url or f"sqlite:///{data_dir.resolve() / 'framecast.db'}",
            storage_url=self.storage_url or f"file://{data_dir.resolve() / 'files'}",
            public_url=self.public_url.rstrip("/"),
            api_keys=keys,
            webhook_key_file=self.webhook_key_file or str(data_dir / "webhook-ed25519.pem"),
        )

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def check_bind_is_safe(self) -> None:
        """Refuse to serve an open API on a network address unless explicitly told to."""
        if self.auth_enabled or self.insecure_no_auth or is_loopback(self.host):
            return
        raise ConfigError(
            f"refusing to listen on {self.host} with no API keys: set FRAMECAST_API_KEYS=id:secret "
            "(or FRAMECAST_API_KEYS_FILE), or pass --insecure-no-auth"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _convert(name: str, kind: object, raw: str) -> object:
    """``raw`` as the field's declared type (``kind`` is the resolved annotation, not its string)."""
    try:
        if name == "api_keys":
            return _parse_keys(raw)
        return _as_type(kind, raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from exc


def _as_type(kind: object, raw: str) -> object:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        # ``X | None``: an empty value is None, anything else must parse as X.
        if type(None) in args and not raw.strip():
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _as_type(inner, raw)
    if typing.get_origin(kind) is tuple:
        return _parse_floats(raw)
    if kind is bool:
        return _parse_bool(raw)
    if kind in (int, float):
        return kind(raw)  # type: ignore[operator]
    if kind is Path:
        return Path(raw)
    return raw
