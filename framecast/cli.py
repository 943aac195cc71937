"""The ``framecast`` command (also ``python -m framecast``).

Every flag overrides the matching ``FRAMECAST_*`` environment variable; the result is one ``Settings`` object
passed to the command. Errors a user can fix (bad settings, missing model weights, bad input) print one line
and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from framecast.config import Settings
from framecast.errors import FramecastError
from framecast.schema import AspectRatio, Duration, Resolution, Style, ThinkingType

EXIT_USER_ERROR = 2

DESCRIPTION = """\
Framecast: self-hosted text-to-video with fal.ai's fal-ai/pixverse/v5.5/text-to-video API.

Start here:
  framecast serve                      API on http://127.0.0.1:8000 plus one worker that renders
  framecast generate "a fox in snow" -o fox.mp4
                                       render one clip locally, no server
  framecast plan "a fox in snow" --duration 10
                                       what a request would render (sizes, frames, steps, ...) as JSON
  framecast models list                which models exist and which are on this machine

Settings come from FRAMECAST_* environment variables (FRAMECAST_DATA_DIR, FRAMECAST_MODEL, FRAMECAST_API_KEYS,
...); a command-line flag wins over its variable.
"""


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="where the database, files and keys live (default ./data)"
    )


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="model preset to render with (default: auto, picked for this hardware)"
    )


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help="address to listen on (default 127.0.0.1; anything else needs API keys)"
    )
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="allow listening on a network address without API keys (anyone who can reach it can use it)",
    )
    parser.add_argument("--ssl-certfile", help="TLS certificate (PEM); see `framecast cert`")
    parser.add_argument("--ssl-keyfile", help="TLS private key (PEM)")


def _add_gpus(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--gpus",
        help=f"devices for several ranks per request: 0,1,2,3 or 0-7 (CUDA) or cpu:2 (gloo ranks); {what}",
    )
    _add_group_size(parser)


def _add_group_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--group-size", type=int, help="devices per worker (default: all of --gpus, one group)"
    )


def _add_request(parser: argparse.ArgumentParser) -> None:
    """The endpoint's inputs, as flags (``generate`` and ``plan`` take the same ones)."""
    parser.add_argument("prompt", metavar="PROMPT", help="what the video shows")
    parser.add_argument("--aspect-ratio", choices=_values(AspectRatio), default=AspectRatio.r16_9.value)
    parser.add_argument("--resolution", choices=_values(Resolution), default=Resolution.p720.value)
    parser.add_argument("--duration", choices=_values(Duration), default=Duration.s5.value, help="seconds")
    parser.add_argument("--negative-prompt", default="", help="what the video should not show")
    parser.add_argument("--style", choices=_values(Style))
    parser.add_argument("--seed", type=int, help="same seed + prompt + model = same video")
    parser.add_argument("--audio", action="store_true", help="generate audio (generate_audio_switch)")
    parser.add_argument(
        "--multi-clip",
        action="store_true",
        help="several shots with camera changes (generate_multi_clip_switch)",
    )
    parser.add_argument("--thinking-type", choices=_values(ThinkingType), help="prompt optimisation mode")


def _request_from(args: argparse.Namespace) -> Any:
    from framecast.schema import TextToVideoInput

    return TextToVideoInput(
        prompt=args.prompt,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        duration=args.duration,
        negative_prompt=args.negative_prompt,
        style=args.style,
        seed=args.seed,
        generate_audio_switch=args.audio,
        generate_multi_clip_switch=args.multi_clip,
        thinking_type=args.thinking_type,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framecast", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API and its worker processes")
    _add_common(serve)
    _add_listen(serve)
    serve.add_argument("--workers", type=int, help="worker processes, one per GPU (default 1; 0 = API only)")
    _add_gpus(serve, "split into groups of --group-size, one worker per group")
    _add_model(serve)
    serve.set_defaults(run=_serve)

    api = commands.add_parser("api", help="run the API only (workers run elsewhere: `framecast worker`)")
    _add_common(api)
    _add_listen(api)
    api.set_defaults(run=_api)

    worker = commands.add_parser("worker", help="run one worker against the same database and storage")
    _add_common(worker)
    _add_gpus(worker, "one group: this worker's ranks render each request together")
    _add_model(worker)
    worker.set_defaults(run=_worker)

    generate = commands.add_parser("generate", help="render one clip locally, without a server")
    _add_common(generate)
    _add_model(generate)
    _add_request(generate)
    generate.add_argument("-o", "--output", type=Path, default=Path("output.mp4"), help="MP4 to write")
    generate.set_defaults(run=_generate)

    plan = commands.add_parser(
        "plan", help="print what a request would render (the plan, as JSON) without rendering it"
    )
    _add_common(plan)
    _add_model(plan)
    _add_request(plan)
    plan.set_defaults(run=_plan)

    models = commands.add_parser("models", help="list, download or check model weights")
    _add_common(models)
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    model_commands.add_parser("list", help="the model presets, and which are on this machine").set_defaults(
        run=_models_list
    )
    for action, text, run in (
        ("pull", "download a model's weights", "_models_pull"),
        ("verify", "check a model's weights are complete", "_models_verify"),
    ):
        sub = model_commands.add_parser(action, help=text)
        sub.add_argument("name", metavar="NAME", help="model preset name (see `framecast models list`)")
        sub.set_defaults(run=globals()[run])

    cert = commands.add_parser("cert", help="write a self-signed TLS certificate for localhost")
    _add_common(cert)
    cert.add_argument("--out", type=Path, help="folder for cert.pem and key.pem (default <data dir>/tls)")
    cert.set_defaults(run=_cert)
    return parser


def settings_from(args: argparse.Namespace, **extra: object) -> Settings:
    """FRAMECAST_* variables, overridden by the flags given (an absent flag is None and changes nothing)."""
    names = (
        "data_dir",
        "host",
        "port",
        "workers",
        "gpus",
        "group_size",
        "insecure_no_auth",
        "ssl_certfile",
        "ssl_keyfile",
        "model",
    )
    flags: dict[str, object] = {name: getattr(args, name, None) for name in names}
    return Settings.from_env(None, **{**flags, **extra})


def _serve(args: argparse.Namespace) -> None:
    from framecast.server import serve

    settings = settings_from(args)
    _configure_logging(settings)
    serve(settings)


def _api(args: argparse.Namespace) -> None:
    from framecast.server import serve

    settings = settings_from(args, workers=0)
    _configure_logging(settings)
    serve(settings)


def _worker(args: argparse.Namespace) -> None:
    from framecast.server import worker

    settings = settings_from(args)
    _configure_logging(settings, "worker")
    worker(settings)


def _generate(args: argparse.Namespace) -> None:
    from framecast.engine import commands, create_engine

    result = commands.generate(create_engine(settings_from(args)), _request_from(args), args.output)
    print(
        f"wrote {args.output}: {result.width}x{result.height}, {result.frames} frames at {result.fps:g} fps, "
        f"seed {result.seed}"
    )


def _plan(args: argparse.Namespace) -> None:
    from framecast.engine import commands, create_engine

    print(json.dumps(commands.plan(create_engine(settings_from(args)), _request_from(args)), indent=2))


def _models_list(args: argparse.Namespace) -> None:
    from framecast.engine import commands, engine_options

    print(commands.models_list(engine_options(settings_from(args))))


def _models_pull(args: argparse.Namespace) -> None:
    from framecast.engine import commands, engine_options

    print(f"{args.name}: weights in {commands.models_pull(engine_options(settings_from(args)), args.name)}")


def _models_verify(args: argparse.Namespace) -> None:
    from framecast.engine import commands, engine_options

    print(commands.models_verify(engine_options(settings_from(args)), args.name))


def _cert(args: argparse.Namespace) -> None:
    from framecast.tls import write_self_signed

    out = args.out or settings_from(args).data_dir / "tls"
    cert, key = write_self_signed(out)
    print(f"wrote {cert} and {key} (valid for localhost, 127.0.0.1 and ::1)")
    print(f"serve:   framecast serve --port 8443 --ssl-certfile {cert} --ssl-keyfile {key}")
    print(
        f"clients: FAL_RUN_HOST=localhost:8443 FAL_QUEUE_RUN_HOST=localhost:8443/queue SSL_CERT_FILE={cert}"
    )


def _configure_logging(settings: Settings, process: str = "api") -> None:
    from framecast.logs import configure_logging

    configure_logging(settings, process)


def _one_line(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except (FramecastError, ValidationError) as exc:
        print(f"framecast: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    return 0
