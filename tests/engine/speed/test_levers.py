"""The speed levers on the CPU (speed/): backend probing falls back cleanly, compile traces a whole block, the
cache, distillation and VAE levers change what they say, on tiny models of the real classes."""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

from framecast.engine import presets
from framecast.engine.families.wan import WanFamily, build, loop
from framecast.engine.speed import attention, cache, distill, vae
from framecast.engine.speed.compile import compile_transformer, warm_up

CPU = torch.device("cpu")


def tiny_transformer():
    return build.build_transformer(build.tiny_config("wan2.1-t2v-1.3b"), CPU, torch.float32)


def tiny_wan(arch: str) -> WanFamily:
    """A Wan family model holding the tiny pipeline of ``arch``: what the levers get their modules from."""
    family = WanFamily(presets.get_preset(arch))
    family.pipe = build.tiny(arch)
    family.pipe.set_progress_bar_config(disable=True)
    return family


def forward(transformer) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 3, 8, 8, generator=gen)
    context = torch.randn(2, 16, 32, generator=gen)
    with torch.no_grad():
        return transformer(x, torch.tensor([999, 500]), context, return_dict=False)[0]


def test_probe_on_cpu_rejects_gpu_only_backends_and_keeps_native():
    probes = {p.name: p for p in attention.probe_attention_backends(CPU, torch.float32)}
    assert set(probes) == set(attention.ATTENTION_CANDIDATES)
    assert probes["native"].ok and probes["native"].rel_err < 1e-5
    for name in ("_native_cudnn", "_flash_3", "flash", "_flash_varlen_3", "flash_varlen"):
        assert not probes[name].ok and probes[name].detail


def test_a_masked_probe_refuses_the_backends_that_take_no_mask():
    # PyTorch's flash kernel runs on this CPU without a mask and refuses one, as a masked model's blocks pass.
    plain = {p.name: p for p in attention.probe_attention_backends(CPU, torch.float32)}
    masked = {p.name: p for p in attention.probe_attention_backends(CPU, torch.float32, masked=True)}
    assert plain["_native_flash"].ok
    assert not masked["_native_flash"].ok and "attn_mask" in masked["_native_flash"].detail
    assert masked["native"].ok and masked["native"].rel_err < 1e-5
    assert attention.pick_attention_backend(masked.values()) == "native"


def test_fastest_working_backend_is_set_and_computes_the_same_output():
    transformer = tiny_transformer()
    reference = forward(transformer)
    name, probes = attention.use_fastest_attention([transformer], time_shape=(1, 64, 2, 12))
    try:
        assert name in {p.name for p in probes if p.ok}
        assert all(p.seconds is not None for p in probes if p.ok)
        assert torch.allclose(forward(transformer), reference, atol=1e-5)
    finally:
        attention.set_attention_backend(transformer, "native")


def test_pick_takes_the_fastest_timed_backend_else_the_first_that_passed():
    timed = [
        attention.BackendProbe("_native_cudnn", True, seconds=0.010),
        attention.BackendProbe("_native_flash", True, seconds=0.007),
        attention.BackendProbe("flash", False, "ImportError"),
    ]
    assert attention.pick_attention_backend(timed) == "_native_flash"
    untimed = [
        attention.BackendProbe("_flash_3", False, "no FA3"),
        attention.BackendProbe("_native_cudnn", True),
    ]
    assert attention.pick_attention_backend(untimed) == "_native_cudnn"
    assert attention.pick_attention_backend([attention.BackendProbe("flash", False, "x")]) == "native"


def test_going_back_to_native_also_resets_the_process_wide_backend():
    transformer = tiny_transformer()
    attention.set_attention_backend(transformer, "_native_flash")
    attention.set_attention_backend(transformer, "native")
    assert _AttentionBackendRegistry.get_active_backend()[0] == AttentionBackendName.NATIVE


def test_regional_compile_traces_each_block_as_one_graph_and_keeps_the_output():
    transformer = tiny_transformer()
    reference = forward(transformer)
    # "eager" runs dynamo's tracing with fullgraph=True (any graph break fails) without inductor's build time.
    compile_transformer(transformer, backend="eager")
    torch._dynamo.reset()
    try:
        assert torch.allclose(forward(transformer), reference, atol=1e-5)
    finally:
        torch._dynamo.reset()


def test_warm_up_runs_one_step_per_bucket():
    seen = []
    seconds = warm_up(lambda w, h, f: seen.append((w, h, f)), [(1280, 704, 121), (704, 1280, 121)])
    assert seen == [(1280, 704, 121), (704, 1280, 121)]
    assert set(seconds) == set(seen)


def test_first_block_cache_is_exact_at_threshold_zero_and_reuses_blocks_above_it():
    def render(threshold: float | None) -> torch.Tensor:
        family = tiny_wan("wan2.1-t2v-1.3b")
        pipe = family.pipe
        if threshold is not None:
            cache.apply(family.modules(), cache.CacheOptions(threshold))
        positive, negative = loop.encode_prompts(pipe, "a cat", "blurry", guidance=True, device=CPU)
        return loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            height=64,
            width=64,
            num_frames=9,
            num_inference_steps=8,
            guidance_scale=5.0,
            generator=torch.Generator().manual_seed(0),
        )

    reference = render(None)
    assert torch.allclose(render(0.0), reference, atol=1e-6)
    assert not torch.allclose(render(0.5), reference, atol=1e-3)


def test_every_variant_names_a_base_preset_and_its_tradeoff():
    from framecast.engine.presets import get_preset

    for variant in presets.VARIANTS.values():
        base = get_preset(variant.base)
        assert variant.tradeoff and variant.steps <= base.steps
        assert variant.name.startswith(variant.base)


def test_channels_last_vae_decodes_the_same_frames():
    pipe = build.tiny("wan2.2-ti2v-5b")
    latents = torch.randn(1, 8, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = loop.decode(pipe, latents, "pt-raw")
        vae.channels_last_3d(pipe.vae)
        assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(loop.decode(pipe, latents, "pt-raw"), reference, atol=1e-5)


def test_the_bf16_vae_lever_casts_the_vae_and_stores_its_convolutions_channels_last():
    family = tiny_wan("wan2.2-ti2v-5b")
    latents = torch.randn(1, 8, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = loop.decode(family.pipe, latents, "pt-raw")
        vae.apply(family.modules(), vae.VaeOptions())
        decoded = loop.decode(family.pipe, latents, "pt-raw")
    assert family.pipe.vae.dtype == torch.bfloat16
    assert family.pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert decoded.dtype == torch.bfloat16
    assert 0 < float((decoded.float() - reference).norm() / reference.norm()) < 5e-2


def test_lora_variant_fuses_each_file_into_its_own_expert(tmp_path):
    from diffusers import WanPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    cfg = build.tiny_config("wan2.2-t2v-a14b")
    family = tiny_wan("wan2.2-t2v-a14b")
    pipe = family.pipe
    experts = [pipe.transformer, pipe.transformer_2]
    before = [e.blocks[0].attn1.to_q.weight.clone() for e in experts]
    deltas, files = [], []
    for i in range(2):
        source = build.build_transformer(cfg, CPU, torch.float32, seed=10 + i)
        lora = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
        source.add_adapter(lora)
        state = get_peft_model_state_dict(source)
        deltas.append(state["blocks.0.attn1.to_q.lora_B.weight"] @ state["blocks.0.attn1.to_q.lora_A.weight"])
        WanPipeline.save_lora_weights(tmp_path / f"expert{i}", transformer_lora_layers=state)
        files.append(f"expert{i}/pytorch_lora_weights.safetensors")

    distill.apply(family.modules(), distill.DistillOptions("t", str(tmp_path), tuple(files)))

    for expert, old, delta in zip(experts, before, deltas, strict=True):
        assert type(expert.blocks[0].attn1.to_q) is torch.nn.Linear  # fused, no adapter left
        assert torch.allclose(expert.blocks[0].attn1.to_q.weight, old + delta, atol=1e-5)


def test_the_lever_table_in_the_docs_is_the_code_s_table_with_each_family_s_claims():
    from pathlib import Path

    from framecast.engine.families import all_families
    from framecast.engine.speed import LEVERS

    docs = (Path(__file__).resolve().parents[3] / "docs" / "models.md").read_text()
    rows = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[1] in ("yes", "no"):
            rows[cells[0].strip("`")] = (cells[1] == "yes", set(cells[3].split(", ")))
    assert set(rows) == {lever.name for lever in LEVERS}
    for lever in LEVERS:
        claimed = {family.name for family in all_families() if lever.name in family.levers}
        assert rows[lever.name] == (lever.exact, claimed), lever.name
    every = {name for family in all_families() for name in family.levers}
    assert every <= {lever.name for lever in LEVERS}  # no family claims a lever that does not exist
