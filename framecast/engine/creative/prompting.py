"""The ``thinking_type`` input: an LLM rewrites a prompt into what video models were trained on.

Where the LLM runs:
- ``LocalLLM``: an instruct model through transformers (``FRAMECAST_PROMPT_LLM``, default
  ``Qwen/Qwen2.5-1.5B-Instruct``; a repo id in the Hugging Face cache or a local folder). It rests on the
  CPU between calls and moves to the GPU only while it generates, so it never holds video-model memory.
  Greedy decoding: the same prompt always gives the same rewrite.
- ``EndpointLLM``: any OpenAI-compatible server when ``FRAMECAST_PROMPT_LLM_URL`` is set
  (``POST /v1/chat/completions``, temperature 0; ``FRAMECAST_PROMPT_LLM`` is sent as the model name).

Modes: ``enabled`` always rewrites; ``disabled``, and an absent ``thinking_type``, never do; ``auto``
rewrites a prompt that ``needs_rewrite`` calls short or vague: fewer than ``AUTO_MIN_WORDS`` (12) words,
or, for a prompt in a Latin script, no word from ``MOTION_WORDS`` or ``CAMERA_WORDS`` (English lists, so
prompts in other scripts are judged by length alone; each CJK character counts as a word).

Guards (``check_rewrite``): a rewrite that is empty, runaway (over ``MAX_PROMPT_BYTES`` bytes, or over
``max(RUNAWAY_FACTOR x the prompt's words, RUNAWAY_MIN_WORDS)`` words), truncated (stopped at the token
limit, or not ending a sentence), an echo of the prompt, or in another script than the prompt is dropped:
the original is used and the log says why. With no LLM available, ``enabled`` raises
``ModelUnavailableError`` and ``auto`` logs that it skipped.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from framecast.engine.creative.text import ends_sentence
from framecast.errors import ModelUnavailableError
from framecast.schema import MAX_PROMPT_BYTES, ThinkingType

__all__ = [
    "DEFAULT_PROMPT_LLM",
    "SYSTEM_PROMPT",
    "ChatLLM",
    "Completion",
    "EndpointLLM",
    "LocalLLM",
    "PromptOptimiser",
    "check_rewrite",
    "count_words",
    "needs_rewrite",
    "prompt_llm",
]

logger = logging.getLogger(__name__)

DEFAULT_PROMPT_LLM = "Qwen/Qwen2.5-1.5B-Instruct"
MAX_NEW_TOKENS = 320  # the asked-for 120 words in any language, with room to finish the sentence
AUTO_MIN_WORDS = 12
RUNAWAY_FACTOR = 6
RUNAWAY_MIN_WORDS = 150

SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-video model. Turn the user's idea into one paragraph of 50 to 120 "
    "words that describes, in this order: the subject and its appearance, the action and how it moves, the "
    "setting, the lighting and colour, the camera framing and movement, and the visual style. Keep every "
    "detail the user gave and do not change the subject or add new characters. Write in the same language "
    "as the user's prompt. Reply with the rewritten prompt only: no title, no quotes, no lists, no "
    "explanation."
)

# Base forms; _inflections adds -s, -es, -ed, -ing (with a dropped e or a doubled consonant).
MOTION_WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "walk run jog sprint fly flies flew soar glide swim swam dive jump leap dance spin turn twirl roll fall "
    "fell rise climb crawl ride rode drive drove race chase flow pour drift float sway wave swing shake "
    "burst explode splash rush move motion gallop march stroll wander hurry sail surf skate ski slide throw "
    "catch kick punch fight grow bloom melt flicker blow ran"
).split()
CAMERA_WORDS = (  # noqa: SIM905
    "camera pan tilt zoom dolly track tracking orbit crane aerial drone handheld pov close-up closeup shot "
    "angle slow-motion timelapse time-lapse push pull follow"
).split()


def _inflections(word: str) -> set[str]:
    stem = word[:-1] if word.endswith("e") else word
    return {word, word + "s", word + "es", stem + "ed", stem + "ing", word + word[-1] + "ing"}


_MOTION_RE = re.compile(
    r"\b(" + "|".join(sorted({f for w in MOTION_WORDS + CAMERA_WORDS for f in _inflections(w)})) + r")\b",
    re.IGNORECASE,
)
_CJK = r"\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD_RE = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_LABEL_RE = re.compile(r"^\s*(?:(?:rewritten|optimi[sz]ed|video|final)\s+)?prompt\s*[:：]\s*", re.IGNORECASE)
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class Completion:
    text: str
    truncated: bool  # generation stopped at the token limit rather than by itself


class ChatLLM(Protocol):
    """One system + user turn in, one reply out. ``ModelUnavailableError`` when the LLM cannot be reached."""

    name: str

    def complete(self, system: str, user: str, max_tokens: int) -> Completion: ...


def count_words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def _is_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    return bool(letters) and latin * 2 > len(letters)


def needs_rewrite(prompt: str) -> bool:
    """The ``auto`` rule: short (< 12 words) or, in a Latin script, naming no motion or camera movement."""
    if count_words(prompt) < AUTO_MIN_WORDS:
        return True
    return _is_latin(prompt) and not _MOTION_RE.search(prompt)


def _clean(text: str) -> str:
    text = _THINK_RE.sub("", text).strip()
    text = _LABEL_RE.sub("", text).strip()
    if len(text) >= 2 and text[0] in "\"'“" and text[-1] in "\"'”":
        text = text[1:-1].strip()
    return text


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def check_rewrite(original: str, rewrite: str, truncated: bool) -> str | None:
    """Why ``rewrite`` must not replace ``original``, or ``None`` when it may."""
    if not rewrite:
        return "empty rewrite"
    words, limit = count_words(rewrite), max(RUNAWAY_FACTOR * count_words(original), RUNAWAY_MIN_WORDS)
    size = len(rewrite.encode("utf-8"))
    if size > MAX_PROMPT_BYTES or words > limit:
        return (
            f"runaway rewrite ({words} words, {size} bytes; limits {limit} words, {MAX_PROMPT_BYTES} bytes)"
        )
    if truncated or not ends_sentence(rewrite):
        return "truncated rewrite (hit the token limit or no sentence end)"
    if _normalised(rewrite) == _normalised(original):
        return "rewrite only echoes the prompt"
    if _is_latin(original) != _is_latin(rewrite):
        return "rewrite changed the prompt's language"
    return None


class PromptOptimiser:
    """Applies ``thinking_type`` to a prompt with one ``ChatLLM``."""

    def __init__(self, llm: ChatLLM, max_tokens: int = MAX_NEW_TOKENS):
        self.llm = llm
        self.max_tokens = max_tokens

    def optimise(
        self, prompt: str, mode: ThinkingType | None, log: Callable[[str], Any] = logger.info
    ) -> str:
        """Return the prompt to render: the rewrite, or ``prompt`` itself when a guard fails."""
        if mode in (None, ThinkingType.disabled):
            return prompt
        if mode is ThinkingType.auto and not needs_rewrite(prompt):
            log("prompt optimisation (auto): prompt is detailed enough, kept as written")
            return prompt
        try:
            completion = self.llm.complete(SYSTEM_PROMPT, prompt, self.max_tokens)
        except ModelUnavailableError as exc:
            if mode is ThinkingType.enabled:
                raise
            log(f"prompt optimisation (auto) skipped: {exc}")
            return prompt
        rewrite = _clean(completion.text)
        reason = check_rewrite(prompt, rewrite, completion.truncated)
        if reason is not None:
            log(f"prompt optimisation ({mode.value}) fell back to the original prompt: {reason}")
            return prompt
        log(f"prompt optimisation ({mode.value}) by {self.llm.name}: {rewrite}")
        return rewrite


def _unavailable(source: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"the prompt LLM {source} is not on this machine: fetch it with `framecast models pull prompt-llm`, "
        "or point FRAMECAST_PROMPT_LLM at a local folder or FRAMECAST_PROMPT_LLM_URL at an OpenAI-compatible "
        "server"
    )


class LocalLLM:
    """An instruct causal LM through transformers, loaded on first use and kept on the CPU between calls."""

    def __init__(self, source: str = DEFAULT_PROMPT_LLM, device: str = "auto"):
        self.name = source
        self.source = source
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    def _target_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

        dtype = torch.bfloat16 if self._target_device() == "cuda" else torch.float32
        try:
            # tokenizer.json is the source of truth; AutoTokenizer would rebuild it from the model type.
            self._tokenizer = PreTrainedTokenizerFast.from_pretrained(self.source, local_files_only=True)
            self._model = AutoModelForCausalLM.from_pretrained(
                self.source, dtype=dtype, local_files_only=True
            )
            self._model.eval()
        except (OSError, ValueError) as exc:
            raise _unavailable(self.source) from exc
        if not self._tokenizer.chat_template:
            raise ModelUnavailableError(
                f"the prompt LLM {self.source} has no chat template: use an instruct model"
            )

    def complete(self, system: str, user: str, max_tokens: int) -> Completion:
        import torch

        self.load()
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        inputs = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        device = self._target_device()
        try:
            self._model.to(device)
            with torch.inference_mode():
                output = self._model.generate(
                    **inputs.to(device),
                    max_new_tokens=max_tokens,
                    do_sample=False,
                    pad_token_id=self._tokenizer.pad_token_id,
                )
        finally:
            if device != "cpu":
                self._model.to("cpu")
                torch.cuda.empty_cache()
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        stopped = bool(new_tokens) and new_tokens[-1] in eos_ids
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        return Completion(text=text, truncated=not stopped and len(new_tokens) >= max_tokens)


class EndpointLLM:
    """An OpenAI-compatible chat completions endpoint (vLLM, llama.cpp, Ollama, a hosted API)."""

    def __init__(
        self,
        url: str,
        model: str = DEFAULT_PROMPT_LLM,
        api_key: str = "",
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ):
        base = url.rstrip("/")
        if not base.endswith("/chat/completions"):
            base += "/chat/completions" if base.endswith("/v1") else "/v1/chat/completions"
        self.url = base
        self.name = f"{model} at {url}"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def complete(self, system: str, user: str, max_tokens: int) -> Completion:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": 0,
        }
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            choice = response.json()["choices"][0]
            text = choice["message"]["content"] or ""
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelUnavailableError(
                f"the prompt LLM endpoint {self.url} did not answer a chat completion ({exc}): check "
                "FRAMECAST_PROMPT_LLM_URL"
            ) from exc
        return Completion(text=text, truncated=choice.get("finish_reason") == "length")

    def close(self) -> None:
        self._client.close()


def prompt_llm(model: str, url: str = "", api_key: str = "", device: str = "auto") -> ChatLLM:
    """The LLM the settings name: the endpoint when ``url`` is set, else the local model."""
    if url:
        return EndpointLLM(url, model=model or DEFAULT_PROMPT_LLM, api_key=api_key)
    return LocalLLM(model or DEFAULT_PROMPT_LLM, device=device)
