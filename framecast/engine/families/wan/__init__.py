"""The Wan family: Wan2.1 T2V, Wan2.2 TI2V and the Wan2.2 A14B two-expert MoE (``family.py``)."""

from framecast.engine.families import register
from framecast.engine.families.wan.family import WanFamily

register(WanFamily)

__all__ = ["WanFamily"]
