"""The HunyuanVideo 1.5 family: Tencent's 8.3B text-to-video model at 480p and 720p (``family.py``)."""

from framecast.engine.families import register
from framecast.engine.families.hunyuan15.family import HunyuanVideo15Family

register(HunyuanVideo15Family)

__all__ = ["HunyuanVideo15Family"]
