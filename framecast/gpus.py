"""GPU groups: which devices one worker process drives, read from ``--gpus`` / ``FRAMECAST_GPUS``.

``0,1,2,3`` or ``0-3`` lists CUDA devices (as CUDA numbers them); ``cpu:2`` is two ranks on the CPU (gloo), so
the multi-rank path runs without GPUs. ``group_size`` cuts the list into groups (``0-7`` by 2: four groups of
two); 0 keeps it whole. Each group is one worker process whose ranks render one request together. Imports no
torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.errors import ConfigError

__all__ = ["GpuGroup", "parse_gpus"]

CPU_PREFIX = "cpu:"


@dataclass(frozen=True)
class GpuGroup:
    """The devices of one worker process: rank ``r`` drives ``ids[r]`` (a CUDA number; on the CPU, ``r``)."""

    device: str  # "cuda" | "cpu"
    ids: tuple[int, ...]

    @property
    def ranks(self) -> int:
        return len(self.ids)

    @property
    def spec(self) -> str:
        """The group as ``--gpus`` writes it; a worker given it drives exactly this group."""
        if self.device == "cpu":
            return f"{CPU_PREFIX}{self.ranks}"
        return ",".join(str(i) for i in self.ids)


def parse_gpus(text: str, group_size: int = 0) -> list[GpuGroup]:
    """The groups ``text`` names, cut by ``group_size``; ``[]`` when it is empty (one worker, one device)."""
    text = text.strip()
    if group_size < 0:
        raise ConfigError(f"--group-size {group_size}: must be 0 (one group) or more")
    if not text:
        if group_size:
            raise ConfigError("--group-size needs --gpus (FRAMECAST_GPUS): which devices to cut into groups")
        return []
    device, ids = ("cpu", _cpu_ranks(text)) if text.startswith(CPU_PREFIX) else ("cuda", _cuda_ids(text))
    size = group_size or len(ids)
    if len(ids) % size:
        raise ConfigError(
            f"--gpus {text} lists {len(ids)} device(s), which do not split into groups of {size} "
            f"(--group-size must divide {len(ids)})"
        )
    if device == "cpu":
        return [GpuGroup("cpu", tuple(range(size))) for _ in range(len(ids) // size)]
    return [GpuGroup("cuda", tuple(ids[i : i + size])) for i in range(0, len(ids), size)]


def _cpu_ranks(text: str) -> list[int]:
    count = text.removeprefix(CPU_PREFIX)
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"--gpus {text}: write cpu:N with N ranks, N at least 1 (e.g. cpu:2)")
    return list(range(int(count)))


def _cuda_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ConfigError(
                f"--gpus {text}: {part!r} is not a device number or range (write e.g. 0,1,2,3 or 0-3 or cpu:2)"
            )
        span = range(int(first), int(last) + 1) if dash else range(int(first), int(first) + 1)
        if not span:
            raise ConfigError(f"--gpus {text}: the range {part!r} is empty")
        ids.extend(span)
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"--gpus {text}: device {repeated[0]} is listed twice; each device drives one rank")
    return ids
