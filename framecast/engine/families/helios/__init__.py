"""The Helios family: PKU-YuanGroup's autoregressive long-clip model, Base and Distilled (``family.py``)."""

from framecast.engine.families import register
from framecast.engine.families.helios.family import HeliosFamily

register(HeliosFamily)

__all__ = ["HeliosFamily"]
