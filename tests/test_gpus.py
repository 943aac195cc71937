"""``--gpus`` / ``FRAMECAST_GPUS``: device lists cut into groups, and a clear error for each malformed one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from framecast.cli import main
from framecast.config import Settings
from framecast.errors import ConfigError
from framecast.gpus import GpuGroup, parse_gpus
from framecast.server import worker_groups


@pytest.mark.parametrize(
    ("text", "size", "groups"),
    [
        ("", 0, []),
        ("0,1,2,3", 0, [(0, 1, 2, 3)]),
        ("0-7", 2, [(0, 1), (2, 3), (4, 5), (6, 7)]),
        ("0-3,6,7", 3, [(0, 1, 2), (3, 6, 7)]),
        ("5", 0, [(5,)]),
    ],
)
def test_a_device_list_is_cut_into_groups_of_the_group_size(text, size, groups):
    assert [g.ids for g in parse_gpus(text, size)] == groups
    assert all(g.device == "cuda" for g in parse_gpus(text, size))


def test_cpu_ranks_are_gloo_groups_that_name_themselves_back():
    assert parse_gpus("cpu:2") == [GpuGroup("cpu", (0, 1))]
    assert [g.spec for g in parse_gpus("cpu:4", 2)] == ["cpu:2", "cpu:2"]
    assert [g.spec for g in parse_gpus("0-3", 2)] == ["0,1", "2,3"]


@pytest.mark.parametrize(
    ("text", "size", "error"),
    [
        ("0,0", 0, "device 0 is listed twice"),
        ("0-2,1", 0, "device 1 is listed twice"),
        ("cpu:3", 2, "do not split into groups of 2"),
        ("0-7", 3, "do not split into groups of 3"),
        ("cpu:0", 0, "N at least 1"),
        ("cpu:two", 0, "write cpu:N"),
        ("gpu1", 0, "'gpu1' is not a device number or range"),
        ("3-1", 0, "the range '3-1' is empty"),
        ("0,1", -1, "must be 0 (one group) or more"),
        ("", 2, "--group-size needs --gpus"),
    ],
)
def test_a_malformed_device_list_is_one_clear_error(text, size, error):
    with pytest.raises(ConfigError, match=re.escape(error)):
        parse_gpus(text, size)


def test_the_settings_read_gpus_from_the_environment_and_refuse_a_bad_list():
    settings = Settings.from_env({"FRAMECAST_GPUS": "0-7", "FRAMECAST_GROUP_SIZE": "2"})
    assert [g.spec for g in worker_groups(settings)] == ["0,1", "2,3", "4,5", "6,7"]
    with pytest.raises(ConfigError, match="listed twice"):
        Settings.from_env({"FRAMECAST_GPUS": "1,1"})


def test_serve_runs_one_worker_per_group_and_refuses_a_worker_count_that_disagrees():
    assert worker_groups(Settings(workers=3)) == [None, None, None]
    assert len(worker_groups(Settings(gpus="cpu:4", group_size=2))) == 2
    assert worker_groups(Settings(gpus="cpu:2", workers=0)) == []
    with pytest.raises(ConfigError, match="--workers 3 and --gpus 0-3"):
        worker_groups(Settings(gpus="0-3", group_size=2, workers=3))


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["worker", "--gpus", "0,0"], "device 0 is listed twice"),
        (["serve", "--gpus", "cpu:3", "--group-size", "2"], "do not split into groups of 2"),
        (
            ["worker", "--gpus", "0-7", "--group-size", "2"],
            "makes 4 groups, and `framecast worker` drives one",
        ),
    ],
)
def test_the_cli_answers_a_bad_device_list_with_one_line(argv, error, capsys, tmp_path):
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("framecast: error: ") and error in err and len(err.strip().splitlines()) == 1


def deploy_commands() -> list[list[str]]:
    """Every ``framecast ...`` command of docs/deploy.md (its shell block and its compose file)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text()
    lines = re.findall(r"(?:^|command: )framecast ([^#\n]+)", text, flags=re.MULTILINE)
    return [shlex.split(line) for line in lines]


def test_every_command_of_the_deploy_guide_parses_into_the_groups_it_describes():
    from framecast.cli import build_parser, settings_from
    from framecast.ranks import one_group

    commands = deploy_commands()
    assert len(commands) >= 6
    seen = {}
    for argv in commands:
        args = build_parser().parse_args(argv)
        settings = settings_from(args)
        if argv[0] == "worker":
            group = one_group(settings)
            seen[" ".join(argv)] = [group.spec] if group else []
        elif argv[0] == "serve":
            seen[" ".join(argv)] = [g.spec if g else None for g in worker_groups(settings)]
    assert seen["serve --gpus 0-7 --group-size 2"] == ["0,1", "2,3", "4,5", "6,7"]
    assert seen["serve --gpus 0-7"] == ["0,1,2,3,4,5,6,7"]
    assert seen["serve --workers 8"] == [None] * 8
    assert seen["worker --gpus 0-7"] == ["0,1,2,3,4,5,6,7"]
