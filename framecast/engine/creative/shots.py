"""The ``generate_multi_clip_switch`` input: split a clip into 2-4 shots joined by hard cuts.

Rules (docs/models.md repeats them for users):
- Shot count by duration: ``shot_count`` = round(seconds / 2.5) clamped to 2..4, so 5 s -> 2 shots,
  8 s -> 3, 10 s -> 4 (shots of 2-2.7 s; each one is within every preset's native length).
- Frames: ``split_frames`` gives each shot ``total // n`` frames and the first ``total % n`` shots one more,
  so they add up to the video's frame count exactly; start and duration are frame-exact (frames / fps).
- Seeds: shot 0 keeps the request's seed; shot ``i`` gets the first 4 bytes of SHA-256(``"<seed>:<i>"``).
- Prompts keep the subject, setting and style and change only the camera, in the order of
  ``CAMERA_PLANS[n]``: establishing wide, medium, close-up, then a low-angle orbit. With an LLM (the prompt
  optimiser's, used when ``thinking_type`` is ``enabled`` or ``auto``) it writes the n shot prompts; a reply
  that is not exactly n numbered lines, or with any line failing the optimiser's guards, falls back to the
  template ``"<framing>. <Prompt>. <camera movement>"`` (prompt capitalised, full stop added), with a log line.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from framecast.engine.creative.prompting import ChatLLM, check_rewrite
from framecast.engine.creative.text import as_sentence
from framecast.engine.planning.plan import Shot
from framecast.errors import ModelUnavailableError

__all__ = [
    "CAMERA_PLANS",
    "ShotPlanner",
    "shot_count",
    "shot_seed",
    "split_frames",
    "template_prompts",
]

logger = logging.getLogger(__name__)

MIN_SHOTS, MAX_SHOTS = 2, 4
SECONDS_PER_SHOT = 2.5
MAX_SHOT_TOKENS = 600

# (framing, camera movement) per shot, for 2, 3 and 4 shots.
WIDE = ("Establishing wide shot", "The camera slowly pushes in, revealing the whole setting.")
MEDIUM = ("Medium shot", "The camera tracks alongside the subject at eye level.")
CLOSE = ("Close-up", "Shallow depth of field; the camera holds steady on the subject's details.")
LOW_ORBIT = ("Low-angle shot", "The camera orbits slowly around the subject.")
CAMERA_PLANS: dict[int, tuple[tuple[str, str], ...]] = {
    2: (WIDE, CLOSE),
    3: (WIDE, MEDIUM, CLOSE),
    4: (WIDE, MEDIUM, CLOSE, LOW_ORBIT),
}

SHOT_SYSTEM_PROMPT = (
    "You plan shots for a text-to-video model. Rewrite the user's scene as exactly {n} shots of one "
    "continuous scene, cut together. Every shot keeps the same subject, appearance, setting, lighting and "
    "visual style; only the camera changes, in this order: {cameras}. Write each shot as one self-contained "
    "prompt of 30 to 80 words that names the subject and setting again. Write in the same language as the "
    "user. Reply with {n} lines numbered 1. to {n}. and nothing else."
)
_LINE_RE = re.compile(r"^\s*(?:shot\s*)?(\d+)\s*[.):：-]\s*(.+?)\s*$", re.IGNORECASE)


def shot_count(seconds: float) -> int:
    return min(MAX_SHOTS, max(MIN_SHOTS, round(seconds / SECONDS_PER_SHOT)))


def split_frames(total: int, count: int) -> list[int]:
    if total < count:
        raise ValueError(f"cannot split {total} frames into {count} shots")
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def shot_seed(seed: int, index: int) -> int:
    if index == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "big")


def template_prompts(prompt: str, count: int) -> list[str]:
    body = as_sentence(prompt)
    body = body[:1].upper() + body[1:]  # it now starts a sentence after the framing
    return [f"{framing}. {body} {movement}" for framing, movement in CAMERA_PLANS[count]]


class ShotPlanner:
    """Plans the shots of one multi-clip video, with the optimiser's LLM when one is given."""

    def __init__(self, llm: ChatLLM | None = None, max_tokens: int = MAX_SHOT_TOKENS):
        self.llm = llm
        self.max_tokens = max_tokens

    def plan(
        self,
        prompt: str,
        total_frames: int,
        fps: int,
        seed: int,
        *,
        negative_prompt: str = "",
        use_llm: bool = False,
        log: Callable[[str], Any] = logger.info,
    ) -> list[Shot]:
        # 1. How many shots, and their exact frames
        count = shot_count(total_frames / fps)
        frames = split_frames(total_frames, count)

        # 2. One prompt per shot: the LLM's, else the template
        prompts = self._llm_prompts(prompt, count, log) if use_llm and self.llm is not None else None
        if prompts is None:
            prompts = template_prompts(prompt, count)

        # 3. Frame-exact timing and per-shot seeds
        shots, start = [], 0
        for index, (text, length) in enumerate(zip(prompts, frames, strict=True)):
            shots.append(
                Shot(text, negative_prompt, start / fps, length / fps, shot_seed(seed, index), length)
            )
            start += length
        log(f"multi-clip: {count} shots, frames {'+'.join(map(str, frames))} = {total_frames}")
        for index, shot in enumerate(shots):
            log(f"shot {index + 1}: {shot.start:.3f}s +{shot.duration:.3f}s seed {shot.seed}: {shot.prompt}")
        return shots

    def _llm_prompts(self, prompt: str, count: int, log: Callable[[str], Any]) -> list[str] | None:
        assert self.llm is not None
        cameras = ", ".join(framing.lower() for framing, _ in CAMERA_PLANS[count])
        system = SHOT_SYSTEM_PROMPT.format(n=count, cameras=cameras)
        try:
            completion = self.llm.complete(system, prompt, self.max_tokens)
        except ModelUnavailableError as exc:
            log(f"multi-clip: shot prompts from the template, the LLM is unavailable: {exc}")
            return None
        lines = [m for m in map(_LINE_RE.match, completion.text.splitlines()) if m]
        reason = None
        if completion.truncated:
            reason = "reply hit the token limit"
        elif [int(m.group(1)) for m in lines] != list(range(1, count + 1)):
            reason = f"reply is not {count} numbered lines"
        else:
            reason = next(filter(None, (check_rewrite(prompt, m.group(2), False) for m in lines)), None)
        if reason is not None:
            log(f"multi-clip: shot prompts from the template, the LLM's were rejected: {reason}")
            return None
        return [m.group(2) for m in lines]
