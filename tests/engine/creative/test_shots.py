import json

import httpx
import pytest

from framecast.engine.creative.prompting import EndpointLLM, LocalLLM
from framecast.engine.creative.shots import (
    CAMERA_PLANS,
    ShotPlanner,
    shot_count,
    shot_seed,
    split_frames,
    template_prompts,
)
from tests.engine.conftest import Log

PROMPT = "A red fox trots through fresh snow in a pine forest at dawn"


def scripted_llm(content: str, finish: str = "stop") -> EndpointLLM:
    """The endpoint LLM over httpx's test transport, answering every call with ``content``."""

    def reply(request: httpx.Request) -> httpx.Response:
        body = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}]}
        return httpx.Response(200, json=body)

    return EndpointLLM("http://llm.test", transport=httpx.MockTransport(reply))


@pytest.mark.parametrize(("seconds", "count"), [(5, 2), (8, 3), (10, 4), (2, 2), (30, 4)])
def test_shot_count_follows_the_documented_table(seconds, count):
    assert shot_count(seconds) == count


@pytest.mark.parametrize("seconds", [5, 8, 10])
@pytest.mark.parametrize("fps", [16, 24, 25, 30])
def test_shot_frames_add_up_exactly_for_every_duration_and_fps(seconds, fps):
    total = seconds * fps
    shots = ShotPlanner().plan(PROMPT, total, fps, seed=7, log=Log())
    assert len(shots) == shot_count(seconds)
    assert sum(s.frames for s in shots) == total
    assert max(s.frames for s in shots) - min(s.frames for s in shots) <= 1
    start = 0
    for shot in shots:
        assert shot.start == start / fps and shot.duration == shot.frames / fps
        start += shot.frames
    assert shots[-1].start + shots[-1].duration == pytest.approx(seconds)


def test_split_frames_gives_the_remainder_to_the_first_shots():
    assert split_frames(121, 2) == [61, 60]
    assert split_frames(161, 4) == [41, 40, 40, 40]
    with pytest.raises(ValueError):
        split_frames(1, 2)


def test_plan_is_deterministic_and_seeds_differ_per_shot():
    first = ShotPlanner().plan(PROMPT, 240, 24, seed=1234, log=Log())
    assert ShotPlanner().plan(PROMPT, 240, 24, seed=1234, log=Log()) == first
    seeds = [s.seed for s in first]
    assert seeds[0] == 1234 and len(set(seeds)) == 4
    assert all(0 <= s < 2**32 for s in seeds)
    assert [s.seed for s in ShotPlanner().plan(PROMPT, 240, 24, seed=1235, log=Log())] != seeds
    assert shot_seed(1234, 2) == seeds[2]


@pytest.mark.parametrize("count", [2, 3, 4])
def test_template_shots_keep_the_subject_and_change_the_camera(count):
    prompts = template_prompts(PROMPT, count)
    assert len(prompts) == count and len(set(prompts)) == count
    for prompt, (framing, movement) in zip(prompts, CAMERA_PLANS[count], strict=True):
        assert prompt == f"{framing}. {PROMPT}. {movement}"
    assert prompts[0].startswith("Establishing wide shot")
    assert template_prompts("a fox", 2)[0] == f"Establishing wide shot. A fox. {CAMERA_PLANS[2][0][1]}"


def test_shot_list_is_logged():
    log = Log()
    shots = ShotPlanner().plan(PROMPT, 120, 24, seed=5, log=log)
    assert log[0] == "multi-clip: 2 shots, frames 60+60 = 120"
    assert log[1] == f"shot 1: 0.000s +2.500s seed 5: {shots[0].prompt}"
    assert log[2].startswith(f"shot 2: 2.500s +2.500s seed {shots[1].seed}: Close-up.")


def test_llm_writes_the_shot_prompts_when_asked():
    lines = [
        "Wide establishing view of a red fox trotting through fresh snow in a pine forest at dawn.",
        "Medium shot of the red fox trotting through the snowy pine forest, the camera tracking beside it.",
        "Close-up of the red fox's frosted muzzle and amber eyes as it trots through the pine forest snow.",
    ]
    llm = scripted_llm("\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)))
    shots = ShotPlanner(llm).plan(PROMPT, 192, 24, seed=1, use_llm=True, log=Log())
    assert [s.prompt for s in shots] == lines
    assert [s.frames for s in shots] == [64, 64, 64]


def test_llm_is_not_used_unless_asked():
    llm = scripted_llm("1. Something else entirely.\n2. Another thing.")
    shots = ShotPlanner(llm).plan(PROMPT, 120, 24, seed=1, log=Log())
    assert [s.prompt for s in shots] == template_prompts(PROMPT, 2)


@pytest.mark.parametrize(
    ("content", "finish", "reason"),
    [
        ("1. Wide view of the fox in the snow.", "stop", "not 2 numbered lines"),
        ("1. Wide view of the fox in the snow.\n2. Close-up of the fox", "stop", "truncated rewrite"),
        ("1. Wide view of the fox in the snow.\n2. Close-up of the fox.", "length", "token limit"),
        ("1. Wide view of the fox in the snow.\n2. " + "fox " * 300 + "end.", "stop", "runaway rewrite"),
    ],
)
def test_bad_llm_shots_fall_back_to_the_template(content, finish, reason):
    log = Log()
    shots = ShotPlanner(scripted_llm(content, finish)).plan(PROMPT, 120, 24, seed=1, use_llm=True, log=log)
    assert [s.prompt for s in shots] == template_prompts(PROMPT, 2)
    assert log[0].startswith("multi-clip: shot prompts from the template, the LLM's were rejected")
    assert reason in log[0]


def test_unavailable_llm_falls_back_to_the_template_with_a_log_line():
    log = Log()
    shots = ShotPlanner(LocalLLM("framecast-test/no-such-llm")).plan(
        PROMPT, 120, 24, seed=1, use_llm=True, log=log
    )
    assert [s.prompt for s in shots] == template_prompts(PROMPT, 2)
    assert log[0].startswith("multi-clip: shot prompts from the template, the LLM is unavailable")


def test_llm_request_names_the_shot_count_and_camera_order():
    seen = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]})

    llm = EndpointLLM("http://llm.test", transport=httpx.MockTransport(reply))
    ShotPlanner(llm).plan(PROMPT, 240, 24, seed=1, use_llm=True, log=Log())
    system = seen[0]["messages"][0]["content"]
    assert "exactly 4 shots" in system
    assert "establishing wide shot, medium shot, close-up, low-angle shot" in system
    assert seen[0]["messages"][1]["content"] == PROMPT


# --- in planning (creative.py's stages) ---


def test_multi_clip_plan_has_frame_exact_shots_with_the_plans_negative():
    from framecast.engine import EngineOptions
    from framecast.engine.creative import Creative
    from framecast.engine.planning import make_plan
    from framecast.engine.presets import get_preset
    from framecast.schema import TextToVideoInput

    preset = get_preset("tiny-wan")
    creative = Creative(EngineOptions(model="tiny-wan", device="cpu"), preset)
    for duration, count in (("5", 2), ("8", 3), ("10", 4)):
        request = TextToVideoInput(prompt=PROMPT, duration=duration, seed=9, generate_multi_clip_switch=True)
        log = Log()
        plan = make_plan(request, preset, stages=creative.stages(log))
        assert len(plan.shots) == count and sum(s.frames for s in plan.shots) == plan.frames
        assert [s.prompt for s in plan.shots] == template_prompts(PROMPT, count)
        assert all(s.negative_prompt == plan.negative_prompt for s in plan.shots)
        assert plan.shots[0].seed == 9 and log[0].startswith(f"multi-clip: {count} shots")


# --- on tiny-wan, through the engine ---


def test_multi_clip_on_tiny_wan_lists_the_shots_and_has_the_exact_total_frames(tiny_wan, tmp_path):
    from framecast.schema import File, Shot, TextToVideoInput, TextToVideoOutput
    from tests.engine.conftest import RecordingContext, decode_frames

    body = TextToVideoInput(
        prompt=PROMPT,
        duration="8",
        resolution="360p",
        aspect_ratio="1:1",
        seed=21,
        generate_multi_clip_switch=True,
    )
    ctx = RecordingContext()
    result = tiny_wan.render(body, ctx, tmp_path / "out.mp4")

    expected = ShotPlanner().plan(PROMPT, 8 * 16, 16, 21, log=Log())
    assert [s.frames for s in expected] == [43, 43, 42]
    assert result.shots == [
        {"prompt": s.prompt, "start": s.start, "duration": s.duration, "seed": s.seed} for s in expected
    ]
    assert "multi-clip: 3 shots, frames 43+43+42 = 128" in ctx.logs
    assert sum(1 for line in ctx.logs if line.startswith("shot ")) == 3
    assert ctx.steps == [(step, 12) for step in range(1, 13)]  # 3 shots x 4 steps, counted across shots
    frames = decode_frames(result.path)
    assert frames.shape[0] == result.frames == 128
    output = TextToVideoOutput(
        video=File(url="x", file_name="out.mp4", file_size=1),
        seed=result.seed,
        prompt=result.prompt,
        shots=result.shots,
    )
    assert [shot.seed for shot in output.shots] == [s.seed for s in expected]
    assert isinstance(output.shots[0], Shot)
