import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from framecast.engine.creative.prompting import (
    MAX_NEW_TOKENS,
    SYSTEM_PROMPT,
    EndpointLLM,
    LocalLLM,
    PromptOptimiser,
    check_rewrite,
    count_words,
    needs_rewrite,
    prompt_llm,
)
from framecast.errors import ModelUnavailableError
from framecast.schema import ThinkingType
from tests.engine.conftest import Log

SHORT = "a cat in a garden"
DETAILED = (
    "A ginger cat walks slowly across a sunlit garden path between rose bushes while the camera tracks "
    "alongside at eye level in warm evening light."
)
GOOD = "Ginger cat walks slowly across sunlit garden while camera tracks alongside at eye level ."
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{% endif %}"
)


def _tokenizer(words: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {
        token: i for i, token in enumerate(dict.fromkeys(SPECIALS + ["system", "user", "assistant"] + words))
    }
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces and tidies " ." to "."
    backend.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def tiny_chat_llm(folder: Path, reply: str | None) -> Path:
    """A real Qwen2ForCausalLM at tiny size, saved with an offline chat tokenizer.

    With ``reply``, its weights make it a bigram machine that answers exactly ``reply`` (unique words) and
    stops; with ``None`` the weights stay random (gibberish, but deterministic under greedy decoding).
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    words = reply.split() if reply is not None else [f"w{i}" for i in range(24)] + ["."]
    tokenizer = _tokenizer(words)
    vocab = tokenizer.get_vocab()
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=len(vocab),
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=8,
        tie_word_embeddings=False,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    if reply is not None:
        chain = ["assistant", *words, "<|im_end|>"]
        with torch.no_grad():
            # Attention and MLP write nothing: the last token's one-hot embedding alone picks the next one.
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight.copy_(torch.eye(len(vocab)))
            model.lm_head.weight.zero_()
            for current, following in zip(chain, chain[1:], strict=False):
                model.lm_head.weight[vocab[following], vocab[current]] = 10.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def optimise(llm, prompt: str, mode: ThinkingType | None, **kwargs) -> tuple[str, Log]:
    log = Log()
    return PromptOptimiser(llm, **kwargs).optimise(prompt, mode, log), log


# --- the auto rule and the guards ---


def test_auto_rule_rewrites_short_or_motionless_prompts_only():
    assert needs_rewrite(SHORT)
    assert not needs_rewrite(DETAILED)
    still = "A ginger cat on a sunlit garden path between rose bushes in warm evening light by an old wall"
    assert count_words(still) >= 12 and needs_rewrite(still)
    # Other scripts: the vocabulary is English, so only length counts; each CJK character is a word.
    assert needs_rewrite("一只猫在花园里")
    assert not needs_rewrite("一只橘猫在洒满阳光的花园小路上慢慢地走着，镜头跟随")


def test_guards_name_each_failure():
    assert check_rewrite(SHORT, "", False) == "empty rewrite"
    assert check_rewrite(SHORT, "word " * 151 + "end.", False).startswith("runaway")
    assert check_rewrite(SHORT, "x" * 2100 + ".", False).startswith("runaway")
    assert check_rewrite(SHORT, "A cat walks in a garden.", True).startswith("truncated")
    assert check_rewrite(SHORT, "A cat walks in a garden and", False).startswith("truncated")
    assert check_rewrite(SHORT, "A cat, in a garden!", False) == "rewrite only echoes the prompt"
    assert (
        check_rewrite("一只猫在花园里", "A cat walks in a garden.", False)
        == "rewrite changed the prompt's language"
    )
    assert check_rewrite(SHORT, GOOD, False) is None
    assert check_rewrite("一只猫在花园里", "一只橘猫在花园里慢慢地走着，镜头跟随。", False) is None


def test_runaway_limit_grows_with_the_prompt():
    long_prompt = " ".join(["word"] * 40)
    assert check_rewrite(long_prompt, "word " * 200 + "end.", False) is None
    assert check_rewrite(long_prompt, "word " * 241 + "end.", False).startswith("runaway")


# --- the local transformers LLM ---


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("llms")
    long_words = [f"{i}" + "x" * 250 for i in range(9)]
    replies = {
        "good": GOOD,
        "empty": "",
        "runaway": " ".join(long_words) + " .",
        "truncated": "on and",  # a cycle: on -> and -> on ... never ends a sentence
        "echo": "Cat sleeps on sofa .",
    }
    folders = {name: tiny_chat_llm(root / name, reply) for name, reply in replies.items()}
    # "on and" must loop rather than stop: point "and" back at "on" and never at the end token.
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(folders["truncated"])
    vocab = _tokenizer(["on", "and"]).get_vocab()
    with torch.no_grad():
        model.lm_head.weight[:, vocab["and"]] = 0
        model.lm_head.weight[vocab["on"], vocab["and"]] = 10.0
    model.save_pretrained(folders["truncated"])
    folders["random"] = tiny_chat_llm(root / "random", None)
    return folders


def test_local_llm_enabled_rewrites_with_a_tiny_model(llm_dir):
    prompt, log = optimise(LocalLLM(str(llm_dir["good"])), SHORT, ThinkingType.enabled)
    assert (
        prompt == "Ginger cat walks slowly across sunlit garden while camera tracks alongside at eye level."
    )
    assert log == [f"prompt optimisation (enabled) by {llm_dir['good']}: {prompt}"]


def test_local_llm_rewrite_is_deterministic_and_the_model_rests_on_the_cpu(llm_dir):
    llm = LocalLLM(str(llm_dir["good"]))
    first = llm.complete(SYSTEM_PROMPT, SHORT, MAX_NEW_TOKENS)
    assert llm.complete(SYSTEM_PROMPT, SHORT, MAX_NEW_TOKENS) == first and not first.truncated
    assert next(llm._model.parameters()).device.type == "cpu"


def test_disabled_and_absent_thinking_type_never_call_the_llm():
    missing = LocalLLM("framecast-test/no-such-llm")
    assert optimise(missing, SHORT, ThinkingType.disabled) == (SHORT, [])
    assert optimise(missing, SHORT, None) == (SHORT, [])


def test_auto_rewrites_a_short_prompt_and_keeps_a_detailed_one(llm_dir):
    llm = LocalLLM(str(llm_dir["good"]))
    prompt, _ = optimise(llm, SHORT, ThinkingType.auto)
    assert prompt.startswith("Ginger cat walks")
    prompt, log = optimise(llm, DETAILED, ThinkingType.auto)
    assert prompt == DETAILED
    assert log == ["prompt optimisation (auto): prompt is detailed enough, kept as written"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "empty rewrite"),
        ("runaway", "runaway rewrite"),
        ("truncated", "truncated rewrite"),
        ("echo", "rewrite only echoes the prompt"),
    ],
)
def test_local_llm_bad_rewrites_fall_back_to_the_original(llm_dir, name, reason):
    prompt = "Cat sleeps on sofa." if name == "echo" else SHORT
    result, log = optimise(LocalLLM(str(llm_dir[name])), prompt, ThinkingType.enabled, max_tokens=40)
    assert result == prompt
    assert len(log) == 1 and "fell back to the original prompt: " + reason in log[0]


def test_random_weight_llm_gibberish_falls_back_deterministically(llm_dir):
    llm = LocalLLM(str(llm_dir["random"]))
    first = optimise(llm, SHORT, ThinkingType.enabled, max_tokens=24)
    assert first[0] == SHORT and "fell back" in first[1][0]
    assert optimise(llm, SHORT, ThinkingType.enabled, max_tokens=24) == first


def test_missing_weights_fail_enabled_with_one_sentence_and_auto_skips():
    llm = prompt_llm("framecast-test/no-such-llm")
    with pytest.raises(ModelUnavailableError) as info:
        optimise(llm, SHORT, ThinkingType.enabled)
    message = str(info.value)
    assert "framecast models pull prompt-llm" in message and message.count(". ") == 0
    prompt, log = optimise(llm, SHORT, ThinkingType.auto)
    assert prompt == SHORT
    assert log[0].startswith("prompt optimisation (auto) skipped: the prompt LLM framecast-test/no-such-llm")


# --- an OpenAI-compatible endpoint ---


class FakeChatServer(ThreadingHTTPServer):
    """A local OpenAI-compatible server: each POST gets the next scripted (content, finish_reason)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.replies: list[tuple[str, str]] = []
        self.requests: list[dict] = []
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ChatHandler(BaseHTTPRequestHandler):
    server: FakeChatServer

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        content, finish = self.server.replies.pop(0)
        payload = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}]}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    server = FakeChatServer()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_endpoint_enabled_sends_the_system_prompt_and_uses_the_rewrite(server):
    server.replies.append((f'Prompt: "{DETAILED}"', "stop"))
    llm = prompt_llm("qwen2.5-7b", url=server.url + "/v1", api_key="sk-test")
    prompt, log = optimise(llm, SHORT, ThinkingType.enabled)
    assert prompt == DETAILED
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["model"] == "qwen2.5-7b" and request["temperature"] == 0
    assert request["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": SHORT},
    ]
    assert log[0].startswith("prompt optimisation (enabled) by qwen2.5-7b at ")


def test_endpoint_auto_and_disabled_modes(server):
    server.replies.append((DETAILED, "stop"))
    llm = EndpointLLM(server.url)
    assert optimise(llm, SHORT, ThinkingType.auto)[0] == DETAILED
    assert optimise(llm, DETAILED, ThinkingType.auto)[0] == DETAILED
    assert optimise(llm, SHORT, ThinkingType.disabled)[0] == SHORT
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (("", "stop"), "empty rewrite"),
        (("   <think>hmm</think>  ", "stop"), "empty rewrite"),
        (("A cat walks through a garden. " * 80, "stop"), "runaway rewrite"),
        (
            ("A ginger cat walks slowly across a sunlit garden while the camera", "length"),
            "truncated rewrite",
        ),
        (("A ginger cat walks slowly across a sunlit garden.", "length"), "truncated rewrite"),
        (("A cat in a garden.", "stop"), "rewrite only echoes the prompt"),
    ],
)
def test_endpoint_bad_rewrites_fall_back_to_the_original(server, reply, reason):
    server.replies.append(reply)
    prompt, log = optimise(EndpointLLM(server.url), SHORT, ThinkingType.enabled)
    assert prompt == SHORT
    assert log == [
        f"prompt optimisation (enabled) fell back to the original prompt: {log[0].split(': ', 1)[1]}"
    ]
    assert reason in log[0]


def test_unreachable_endpoint_fails_enabled_and_auto_skips(server):
    url = server.url
    server.shutdown()
    server.server_close()
    llm = EndpointLLM(url, timeout=2)
    with pytest.raises(ModelUnavailableError, match="FRAMECAST_PROMPT_LLM_URL"):
        optimise(llm, SHORT, ThinkingType.enabled)
    prompt, log = optimise(llm, SHORT, ThinkingType.auto)
    assert prompt == SHORT and log[0].startswith(
        "prompt optimisation (auto) skipped: the prompt LLM endpoint"
    )


# --- in planning (creative.py's stages) ---


def _plan(settings_fields: dict, **fields):
    from framecast.engine import EngineOptions
    from framecast.engine.creative import Creative
    from framecast.engine.planning import make_plan
    from framecast.engine.presets import get_preset
    from framecast.schema import TextToVideoInput

    preset = get_preset("tiny-wan")
    log = Log()
    creative = Creative(EngineOptions(model="tiny-wan", device="cpu", **settings_fields), preset)
    plan = make_plan(TextToVideoInput(seed=1, **fields), preset, stages=creative.stages(log))
    return plan, log


def test_plan_carries_the_rewrite_then_the_style(server):
    from framecast.engine.creative.styles import apply_style
    from framecast.schema import Style

    server.replies.append((DETAILED, "stop"))
    plan, log = _plan({"prompt_llm_url": server.url}, prompt=SHORT, thinking_type="enabled", style="anime")
    assert plan.prompt == apply_style(DETAILED, "", Style.anime)[0]
    assert plan.shots[0].prompt == plan.prompt
    assert log[0].startswith("prompt optimisation (enabled) by ") and log[1].startswith("style anime: ")


def test_plan_with_missing_llm_fails_enabled_and_skips_auto():
    settings = {"prompt_llm": "framecast-test/no-such-llm"}
    with pytest.raises(ModelUnavailableError):
        _plan(settings, prompt=SHORT, thinking_type="enabled")
    plan, log = _plan(settings, prompt=SHORT, thinking_type="auto")
    assert plan.prompt == SHORT and "skipped" in log[0]


# --- all four creative controls on tiny-wan, through the engine ---


def test_render_is_deterministic_with_all_four_controls_on(server, tmp_path):
    import av

    from framecast.config import Settings
    from framecast.engine import create_engine
    from framecast.engine.creative.styles import apply_style
    from framecast.schema import Style, TextToVideoInput
    from tests.engine.conftest import RecordingContext, decode_frames

    shots = (
        "1. Wide view of a ginger cat walking across a sunlit garden.\n2. Close-up of the ginger cat's face."
    )
    engine = create_engine(Settings(model="tiny-wan", device="cpu", prompt_llm_url=server.url))
    body = TextToVideoInput(
        prompt=SHORT,
        resolution="360p",
        aspect_ratio="1:1",
        seed=8,
        style="cyberpunk",
        thinking_type="enabled",
        generate_audio_switch=True,
        generate_multi_clip_switch=True,
    )
    results, videos, audios, logs = [], [], [], []
    for run in range(2):
        server.replies += [(DETAILED, "stop"), (shots, "stop")]
        ctx = RecordingContext()
        result = engine.render(body, ctx, tmp_path / f"{run}.mp4")
        results.append(result)
        logs.append(ctx.logs)
        videos.append(decode_frames(result.path))
        with av.open(str(result.path)) as container:
            audios.append(np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1))

    first, again = results
    assert first.prompt == apply_style(DETAILED, "", Style.cyberpunk)[0] == again.prompt
    wide, close = (line[3:] for line in shots.splitlines())
    assert [s["prompt"] for s in first.shots] == [
        apply_style(p, "", Style.cyberpunk)[0] for p in (wide, close)
    ]
    assert first.shots == again.shots and first.has_audio and logs[0] == logs[1]
    assert videos[0].shape[0] == 80 and np.array_equal(videos[0], videos[1])
    assert np.array_equal(audios[0], audios[1])
