"""Stages: functions from frames to frames, run between the model's generation and the output mapping.

The upscaler stage (upscale.py) is named here, without importing torch, for ``framecast models list|pull`` and
the engine's options.
"""

__all__ = ["TINY_UPSCALER", "UPSCALER_LICENCE", "UPSCALER_NAME", "UPSCALER_REPO"]

UPSCALER_NAME = "kandinsky6-vsr"  # what plans, the output's "upscaled" and `framecast models pull` call it
UPSCALER_REPO = "kandinskylab/Kandinsky-6.0-VSR-distilled2steps-5s-Diffusers"
UPSCALER_LICENCE = "MIT"
TINY_UPSCALER = "tiny"  # FRAMECAST_UPSCALER_MODEL=tiny: its random-weight tiny model (tests, CPU smoke runs)
