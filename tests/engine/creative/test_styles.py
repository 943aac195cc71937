from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from framecast.engine.creative.styles import STYLE_TEXTS, StyleLoras, apply_style, parse_style_loras
from framecast.errors import ConfigError
from framecast.schema import Style, TextToVideoInput

PROMPT = "A red fox trots through fresh snow in a pine forest at dawn"


@pytest.mark.parametrize("style", list(Style))
def test_each_style_wraps_the_prompt_and_extends_the_negative_as_documented(style):
    text = STYLE_TEXTS[style]
    prompt, negative = apply_style(PROMPT, "low quality, jitter", style)
    assert prompt == f"{text.lead} {PROMPT}. {text.look}"
    assert negative == f"low quality, jitter, {text.negative}"


def test_every_schema_style_has_distinct_texts():
    assert set(STYLE_TEXTS) == set(Style)
    assert len({t.lead for t in STYLE_TEXTS.values()}) == len(Style)
    assert len({t.negative for t in STYLE_TEXTS.values()}) == len(Style)


def test_no_style_leaves_prompt_and_negative_untouched():
    assert apply_style(PROMPT, "blurry", None) == (PROMPT, "blurry")


def test_style_negative_alone_when_user_gave_none_and_skips_terms_already_there():
    _, negative = apply_style(PROMPT, "", Style.anime)
    assert negative == STYLE_TEXTS[Style.anime].negative
    _, negative = apply_style(PROMPT, "Photorealistic, ugly,", Style.anime)
    assert negative.lower().count("photorealistic") == 1
    assert negative.startswith("Photorealistic, ugly, live action")


def test_prompt_that_already_ends_a_sentence_gets_no_extra_full_stop():
    prompt, _ = apply_style("一只狐狸在雪中奔跑。", "", Style.clay)
    assert "奔跑。 " in prompt and "奔跑。." not in prompt


def test_unknown_style_is_rejected_by_the_schema():
    with pytest.raises(ValidationError) as info:
        TextToVideoInput(prompt=PROMPT, style="watercolor")
    assert info.value.errors()[0]["loc"] == ("style",)
    assert TextToVideoInput(prompt=PROMPT, style="3d_animation").style is Style.animation_3d


def test_style_lora_config_parses_styles_and_preset_scoped_entries():
    loras = parse_style_loras(" anime=/loras/anime.safetensors, wan2.2-5b:clay=user/clay-lora ,\n")
    assert loras == {
        (None, Style.anime): "/loras/anime.safetensors",
        ("wan2.2-5b", Style.clay): "user/clay-lora",
    }
    assert parse_style_loras("") == {}


@pytest.mark.parametrize("text", ["anime", "anime=", "=x", "watercolor=/x.safetensors"])
def test_bad_style_lora_entries_are_config_errors(text):
    with pytest.raises(ConfigError):
        parse_style_loras(text)


def test_preset_scoped_lora_wins_over_the_general_one():
    loras = StyleLoras(parse_style_loras("comic=a, tiny-wan:comic=b, anime=c"), preset="tiny-wan")
    assert loras.source_for(Style.comic) == "b"
    assert loras.source_for(Style.anime) == "c"
    assert loras.source_for(Style.clay) is None
    assert StyleLoras(loras.loras, preset="other").source_for(Style.comic) == "a"


# --- LoRA swapping on a real tiny Wan transformer ---


def _tiny_wan_transformer():
    from framecast.engine.families import tiny_pipeline

    return tiny_pipeline("tiny-wan").transformer  # the very architecture the tiny-wan preset loads LoRAs into


def _save_tiny_lora(folder: Path, seed: int) -> Path:
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = _tiny_wan_transformer()
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
    transformer.add_adapter(config)
    WanPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(transformer))
    return folder / "pytorch_lora_weights.safetensors"


def test_style_loras_load_swap_and_unload_without_reloading_the_model(tmp_path):
    pytest.importorskip("peft")
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    from framecast.engine.families.wan import WanFamily
    from framecast.engine.presets import get_preset

    anime = _save_tiny_lora(tmp_path / "anime", seed=1)
    clay = _save_tiny_lora(tmp_path / "clay", seed=2)
    transformer = _tiny_wan_transformer()
    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=None,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    torch.manual_seed(3)
    latents, text, step = torch.randn(1, 16, 1, 4, 4), torch.randn(1, 5, 32), torch.tensor([500])

    def run():
        with torch.no_grad():
            return pipe.transformer(latents, step, text, return_dict=False)[0]

    base = run()
    loras = StyleLoras(parse_style_loras(f"anime={anime},clay={clay}"))
    model = WanFamily(get_preset("tiny-wan"))  # the family's LoRA methods, on this pipeline
    model.pipe = pipe

    assert loras.activate(model, Style.anime) == str(anime)
    with_anime = run()
    assert loras.activate(model, Style.anime) == str(anime)  # same style again: nothing reloaded
    assert torch.equal(run(), with_anime)
    loras.activate(model, Style.clay)
    with_clay = run()
    loras.activate(model, Style.comic)  # a style without a LoRA renders on the base weights
    without = run()

    assert pipe.transformer is transformer
    assert not torch.allclose(with_anime, base) and not torch.allclose(with_clay, base)
    assert not torch.allclose(with_anime, with_clay)
    assert torch.equal(without, base)
    assert loras.active is None


# --- in planning (creative.py's stages) ---


def _plan(**fields):
    from framecast.engine import EngineOptions
    from framecast.engine.creative import Creative
    from framecast.engine.planning import make_plan
    from framecast.engine.presets import get_preset

    preset = get_preset("tiny-wan")
    log: list[str] = []
    creative = Creative(EngineOptions(model="tiny-wan", device="cpu"), preset)
    request = TextToVideoInput(prompt=PROMPT, seed=3, **fields)
    return make_plan(request, preset, stages=creative.stages(log.append)), log


@pytest.mark.parametrize("style", list(Style))
def test_style_changes_the_plans_final_prompt_and_negative_and_is_logged(style):
    plan, log = _plan(style=style.value, negative_prompt="jitter")
    prompt, negative = apply_style(PROMPT, "jitter, blurry", style)  # the user's, the preset's, the style's
    assert (plan.prompt, plan.negative_prompt) == (prompt, negative)
    assert (plan.shots[0].prompt, plan.shots[0].negative_prompt) == (prompt, negative)
    assert log == [
        f"style {style.value}: prompt {prompt!r}; negative prompt {negative!r}",
        f"final prompt: {prompt!r}; negative prompt: {negative!r}",
    ]


def test_style_wraps_every_shot_of_a_multi_clip_plan():
    plan, _ = _plan(style="clay", generate_multi_clip_switch=True)
    text = STYLE_TEXTS[Style.clay]
    assert len(plan.shots) == 2
    for shot in plan.shots:
        assert shot.prompt.startswith(text.lead) and shot.prompt.endswith(text.look) and PROMPT in shot.prompt
        assert shot.negative_prompt == plan.negative_prompt and text.negative in shot.negative_prompt


def test_no_style_leaves_the_plan_prompt_as_written():
    plan, log = _plan()
    assert plan.prompt == PROMPT and plan.negative_prompt == "blurry"
    assert log == [f"final prompt: {PROMPT!r}; negative prompt: 'blurry'"]


def test_style_lora_from_settings_applies_on_tiny_wan_and_unloads_for_the_next_request(tmp_path):
    pytest.importorskip("peft")
    from framecast.config import Settings
    from framecast.engine import create_engine
    from framecast.engine.planning import make_plan
    from tests.engine.conftest import RecordingContext

    lora = _save_tiny_lora(tmp_path / "anime", seed=1)
    engine = create_engine(Settings(model="tiny-wan", device="cpu", style_loras=f"tiny-wan:anime={lora}"))
    plain = TextToVideoInput(prompt=PROMPT, resolution="360p", aspect_ratio="1:1", seed=2)
    engine.load()
    baseline = engine.generate(make_plan(plain, engine.preset), RecordingContext()).video

    styled = plain.model_copy(update={"style": Style.anime})
    engine.render(styled, RecordingContext(), tmp_path / "anime.mp4")
    assert engine.creative.style_loras.active == str(lora)
    with_lora = engine.generate(make_plan(styled, engine.preset), RecordingContext()).video
    engine.render(plain, RecordingContext(), tmp_path / "plain.mp4")
    assert engine.creative.style_loras.active is None
    after = engine.generate(make_plan(plain, engine.preset), RecordingContext()).video

    assert torch.equal(after, baseline)
    assert not torch.allclose(
        with_lora, engine.generate(make_plan(styled, engine.preset), RecordingContext()).video
    )


def test_a_style_drops_the_presets_photographic_look_terms_from_its_negative_prompt():
    from framecast.engine import EngineOptions
    from framecast.engine.creative import Creative
    from framecast.engine.planning import make_plan
    from framecast.engine.presets import get_preset

    preset = get_preset("tiny:ltx-2")
    assert preset.style_terms and all(term in preset.negative_prompt for term in preset.style_terms)
    creative = Creative(EngineOptions(model=preset.name, device="cpu"), preset)
    for style in (None, Style.anime):
        request = TextToVideoInput(prompt=PROMPT, seed=3, style=style)
        plan = make_plan(request, preset, stages=creative.stages(lambda line: None))
        kept = [term for term in preset.style_terms if term in plan.negative_prompt.split(", ")]
        assert kept == ([] if style else list(preset.style_terms))
        assert "blurry" in plan.negative_prompt and "has_subtitles" in plan.negative_prompt
