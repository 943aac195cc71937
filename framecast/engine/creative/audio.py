"""The audio stage: a soundtrack for presets that render video only, when ``generate_audio_switch`` is on.

Model: Stable Audio Open 1.0 (``stabilityai/stable-audio-open-1.0``, diffusers ``StableAudioPipeline``,
stereo 44.1 kHz, up to 47 s) under the Stability AI Community License: free for research, non-commercial use
and commercial use by organisations under US$1M annual revenue; above that, an enterprise licence from
Stability AI. The repo is gated: accept the licence on the Hub before
``framecast models pull stable-audio-open``. Presets with joint audio (``ltx-2``) never run this stage:
their pipeline renders the track with the video.

The prompt is ``describe_audio``'s: a music mood and the sounds of the scene, picked with keyword tables
(``MOODS``, ``SOUNDS``) from the video prompt, then the scene itself (first 40 words). Dialogue is beyond a
text-to-audio model: a prompt asking for speech gets music and effects, and the log says that dialogue needs
a joint-audio preset. The waveform is exactly the video's length, ``round(frames * sample_rate / fps)``
samples: the model's output cut, or padded with silence at the end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from framecast.engine.presets import joint_audio_presets
from framecast.errors import ModelUnavailableError, RenderStopped

__all__ = [
    "AUDIO_LICENCE",
    "AUDIO_REPO",
    "AudioStage",
    "build_tiny_audio",
    "describe_audio",
    "wants_dialogue",
]

logger = logging.getLogger(__name__)

AUDIO_REPO = "stabilityai/stable-audio-open-1.0"
AUDIO_LICENCE = "Stability AI Community License (commercial use above US$1M annual revenue needs a licence)"
AUDIO_NEGATIVE = "low quality, distorted, noise, clipping, speech"
DEFAULT_STEPS = 100
DEFAULT_GUIDANCE = 7.0

# (keywords, mood): the first table row with a keyword in the prompt sets the music.
MOODS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("battle", "fight", "chase", "explosion", "war", "storm", "monster", "attack"),
        "tense, driving orchestral",
    ),
    (("cyberpunk", "neon", "futuristic", "robot", "spaceship", "sci-fi"), "dark pulsing synthwave"),
    (("night", "rain", "lonely", "sad", "fog", "abandoned", "winter"), "melancholic ambient piano"),
    (
        ("party", "dance", "festival", "celebration", "celebrate", "carnival", "concert"),
        "upbeat energetic electronic",
    ),
    (("race", "racing", "speed", "sprint", "skate", "surf"), "fast energetic rock"),
    (
        ("forest", "meadow", "garden", "mountain", "river", "flower", "sunrise", "dawn"),
        "gentle acoustic folk",
    ),
    (("ocean", "beach", "sea", "underwater", "island"), "calm airy ambient"),
    (("city", "street", "cafe", "office", "traffic"), "relaxed lo-fi"),
    (("cat", "dog", "puppy", "kitten", "child", "play", "cartoon", "anime"), "playful light orchestral"),
)
DEFAULT_MOOD = "cinematic ambient"

# keyword -> the sound it makes; every row whose keyword is in the prompt adds its sound (at most four).
SOUNDS: tuple[tuple[str, str], ...] = (
    ("rain", "rain falling"),
    ("thunder", "rolling thunder"),
    ("storm", "howling wind"),
    ("wind", "wind gusts"),
    ("ocean", "waves crashing"),
    ("beach", "waves on the shore"),
    ("river", "flowing water"),
    ("waterfall", "rushing waterfall"),
    ("forest", "birdsong and rustling leaves"),
    ("bird", "birds chirping"),
    ("fire", "crackling fire"),
    ("city", "distant city traffic"),
    ("street", "footsteps and street ambience"),
    ("car", "car engine"),
    ("train", "train on tracks"),
    ("crowd", "crowd murmur"),
    ("snow", "soft crunching snow"),
    ("horse", "hooves galloping"),
    ("dog", "a dog barking"),
    ("cat", "soft purring"),
    ("explosion", "a deep explosion"),
    ("sword", "swords clashing"),
    ("spaceship", "engine hum"),
    ("robot", "servo whirs"),
    ("cafe", "cafe chatter and clinking cups"),
    ("kitchen", "sizzling pan"),
)
MAX_SOUNDS = 4
_DIALOGUE_RE = re.compile(
    r"[\"“”「」]|\b(says?|said|saying|speak|speaks|speaking|talk|talks|talking|dialogue|conversation|"
    r"whispers?|shouts?|sings?|singing|narrat\w*|voice)\b",
    re.IGNORECASE,
)


def _has(text: str, keyword: str) -> bool:
    # Whole words (and plurals): "cat" must not hear "catch", nor "sea" "season".
    return re.search(rf"\b{re.escape(keyword)}(?:s|es)?\b", text, re.IGNORECASE) is not None


def describe_audio(prompt: str) -> str:
    """The text-to-audio prompt for a video prompt: the scene, a music mood and the scene's sounds."""
    mood = next((m for words, m in MOODS if any(_has(prompt, w) for w in words)), DEFAULT_MOOD)
    sounds = [sound for keyword, sound in SOUNDS if _has(prompt, keyword)][:MAX_SOUNDS]
    scene = " ".join(prompt.split()[:40]).rstrip(".")
    ambience = ", ".join(sounds) if sounds else "natural ambience of the scene"
    # Music and sounds first: a long scene is what the text encoder's token limit should cut.
    return f"{mood.capitalize()} background music with {ambience}. Scene: {scene}. High quality, stereo."


def wants_dialogue(prompt: str) -> bool:
    return _DIALOGUE_RE.search(prompt) is not None


class AudioStage:
    """Stable Audio Open (or a tiny stand-in) kept on the CPU between renders, on the GPU while it runs."""

    def __init__(
        self,
        pipe: Any,
        device: str = "cpu",
        steps: int = DEFAULT_STEPS,
        guidance_scale: float = DEFAULT_GUIDANCE,
    ):
        self.pipe = pipe
        self.device = device
        self.steps = steps
        self.guidance_scale = guidance_scale

    @classmethod
    def load(cls, source: str = AUDIO_REPO, device: str = "cpu", **kwargs: Any) -> AudioStage:
        import torch
        from diffusers import StableAudioPipeline

        dtype = torch.float16 if device == "cuda" else torch.float32
        try:
            pipe = StableAudioPipeline.from_pretrained(source, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"the audio model {source} is not on this machine ({type(exc).__name__}): accept its "
                f"licence ({AUDIO_LICENCE}) on the Hub and run `framecast models pull stable-audio-open`, or send "
                "generate_audio_switch=false"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, device=device, **kwargs)

    @property
    def sample_rate(self) -> int:
        return int(self.pipe.vae.config.sampling_rate)

    @property
    def max_seconds(self) -> float:
        return self.pipe.transformer.config.sample_size * self.pipe.vae.hop_length / self.sample_rate

    def generate(
        self,
        video_prompt: str,
        frames: int,
        fps: float,
        seed: int,
        *,
        log: Callable[[str], Any] = logger.info,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> tuple[np.ndarray, int]:
        """A float32 ``(channels, samples)`` waveform exactly ``frames / fps`` long, and its sample rate."""
        import torch

        # 1. Describe the sound, and say what a text-to-audio model cannot do
        description = describe_audio(video_prompt)
        log(f"audio stage: {description}")
        if wants_dialogue(video_prompt):
            log(
                f"audio stage: the prompt asks for speech; dialogue needs a joint-audio preset "
                f"({joint_audio_presets()}), so this track has music and sound effects only"
            )
        seconds = frames / fps
        if seconds > self.max_seconds:
            raise ValueError(
                f"the audio model renders at most {self.max_seconds:.2f} s, asked for {seconds:.2f} s"
            )

        # 2. Denoise on the GPU (if any), then give the memory back to the video model
        def on_step(step: int, timestep: Any, latents: Any) -> None:
            reason = should_stop()
            if reason:
                raise RenderStopped(reason)

        try:
            self.pipe.to(self.device)
            with torch.inference_mode():
                audio = self.pipe(
                    description,
                    negative_prompt=AUDIO_NEGATIVE,
                    audio_end_in_s=seconds,
                    num_inference_steps=self.steps,
                    guidance_scale=self.guidance_scale,
                    generator=torch.Generator("cpu").manual_seed(seed),
                    callback=on_step,
                    output_type="pt",
                ).audios[0]
        finally:
            if self.device != "cpu":
                self.pipe.to("cpu")
                torch.cuda.empty_cache()

        # 3. Exactly the video's length
        samples = round(frames * self.sample_rate / fps)
        waveform = audio.float().cpu().numpy()[:, :samples]
        waveform = np.pad(waveform, ((0, 0), (0, samples - waveform.shape[1])))
        return np.ascontiguousarray(waveform, dtype=np.float32), self.sample_rate


def build_tiny_audio(sample_rate: int = 16000, max_seconds: float = 10.5) -> Any:
    """A random-weight ``StableAudioPipeline`` of the real classes, built offline (tests, tiny presets)."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=64)
    hop = 4 * 8 * 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text_encoder = T5EncoderModel(
            T5Config(
                vocab_size=len(vocab),
                d_model=32,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
            )
        )
        transformer: Any = StableAudioDiTModel(
            sample_size=int(np.ceil(max_seconds * sample_rate / hop)),
            in_channels=4,
            num_layers=2,
            attention_head_dim=4,
            num_attention_heads=2,
            num_key_value_attention_heads=2,
            out_channels=4,
            cross_attention_dim=4,
            time_proj_dim=8,
            global_states_input_dim=8,
            cross_attention_input_dim=4,
        )
        vae: Any = AutoencoderOobleck(
            encoder_hidden_size=4,
            downsampling_ratios=[4, 8, 8],
            decoder_channels=4,
            decoder_input_channels=4,
            audio_channels=2,
            channel_multiples=[1, 2, 2],
            sampling_rate=sample_rate,
        )
        projection: Any = StableAudioProjectionModel(
            text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=64
        )
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    pipe: Any = StableAudioPipeline(
        transformer=transformer.eval(),
        scheduler=scheduler,
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        projection_model=projection.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
