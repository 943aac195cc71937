"""The endpoint's contract: fal-ai/pixverse/v5.5/text-to-video input and output, fields in the spec's order.

Decisions where the spec is silent (documented in docs/api.md):
- ``duration`` is a string enum; a bare JSON integer 5, 8 or 10 is accepted and read as the string.
- ``seed`` is an integer from 0 to 2**32 - 1 (what every generator we use accepts); anything else is a 422.
- Unknown fields are ignored, as fal does.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

ENDPOINT_ID = "fal-ai/pixverse/v5.5/text-to-video"
APP_ID = "fal-ai/pixverse"
MAX_PROMPT_BYTES = 2048
SEED_MIN = 0
SEED_MAX = 2**32 - 1


class AspectRatio(str, Enum):
    r16_9 = "16:9"
    r4_3 = "4:3"
    r1_1 = "1:1"
    r3_4 = "3:4"
    r9_16 = "9:16"


class Resolution(str, Enum):
    p360 = "360p"
    p540 = "540p"
    p720 = "720p"
    p1080 = "1080p"


class Duration(str, Enum):
    s5 = "5"
    s8 = "8"
    s10 = "10"

    @property
    def seconds(self) -> int:
        return int(self.value)


class Style(str, Enum):
    anime = "anime"
    animation_3d = "3d_animation"
    clay = "clay"
    comic = "comic"
    cyberpunk = "cyberpunk"


class ThinkingType(str, Enum):
    enabled = "enabled"
    disabled = "disabled"
    auto = "auto"


def _check_text_bytes(value: str) -> str:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "string_unicode", "String must be valid Unicode text (no lone surrogates)"
        ) from None
    if size > MAX_PROMPT_BYTES:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_bytes} bytes in UTF-8, got {size}",
            {"max_bytes": MAX_PROMPT_BYTES, "size": size},
        )
    return value


class TextToVideoInput(BaseModel):
    """The request body. Field order, names, enums and defaults follow the endpoint spec."""

    model_config = ConfigDict(extra="ignore", use_enum_values=False)

    prompt: str = Field(description="The text describing the video.")
    aspect_ratio: AspectRatio = Field(
        AspectRatio.r16_9, description="The aspect ratio of the generated video"
    )
    resolution: Resolution = Field(Resolution.p720, description="The resolution of the generated video")
    duration: Duration = Field(
        Duration.s5,
        description="The duration of the generated video in seconds. 1080p videos are limited to 5 or 8 seconds",
    )
    negative_prompt: str = Field("", description="Negative prompt to be used for the generation")
    style: Style | None = Field(None, description="The style of the generated video")
    seed: int | None = Field(
        None,
        ge=SEED_MIN,
        le=SEED_MAX,
        description="The same seed and prompt on the same model and hardware give the same video. 0 to 2**32-1.",
    )
    generate_audio_switch: bool = Field(False, description="Enable audio generation (BGM, SFX, dialogue)")
    generate_multi_clip_switch: bool = Field(
        False, description="Enable multi-clip generation with dynamic camera changes"
    )
    thinking_type: ThinkingType | None = Field(
        None,
        description="Prompt optimization mode: 'enabled' to optimize, 'disabled' to turn off, "
        "'auto' for model decision",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("string_blank", "Prompt must not be empty or only whitespace")
        return _check_text_bytes(value)

    @field_validator("negative_prompt")
    @classmethod
    def _negative_prompt_size(cls, value: str) -> str:
        return _check_text_bytes(value)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_from_integer(cls, value: Any) -> Any:
        # JS callers often send a number; read 5 as "5". Booleans are not numbers here.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("duration")
    @classmethod
    def _duration_fits_resolution(cls, value: Duration, info: ValidationInfo) -> Duration:
        if info.data.get("resolution") is Resolution.p1080 and value is Duration.s10:
            raise PydanticCustomError(
                "duration_resolution", "1080p videos are limited to 5 or 8 seconds", {"resolution": "1080p"}
            )
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_is_integer(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


class File(BaseModel):
    url: str
    content_type: str = "video/mp4"
    file_name: str
    file_size: int


class Shot(BaseModel):
    """Framecast-only: one shot of a multi-clip video."""

    prompt: str
    start: float
    duration: float
    seed: int


class TextToVideoOutput(BaseModel):
    """The response body. ``video`` is fal's; the rest are Framecast-only and ignored by fal's clients."""

    video: File
    seed: int = Field(description="Framecast-only: the seed actually used, to reproduce the clip")
    prompt: str | None = Field(None, description="Framecast-only: the final prompt after style and rewriting")
    shots: list[Shot] | None = Field(None, description="Framecast-only: the shots of a multi-clip video")
    upscaled: str | None = Field(
        None,
        description='Framecast-only: how frames were brought above the model\'s native size: "bicubic", or the '
        "learned upscaler's name; absent when nothing was upscaled",
    )
