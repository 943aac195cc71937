"""The LTX-2 family: Lightricks' joint audio-video model (``family.py``)."""

from framecast.engine.families import register
from framecast.engine.families.ltx2.family import Ltx2Family

register(Ltx2Family)

__all__ = ["Ltx2Family"]
