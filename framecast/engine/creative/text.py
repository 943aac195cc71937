"""Sentence handling shared by the creative stages (prompt optimiser, shot planner, styles): written once."""

from __future__ import annotations

import re

__all__ = ["as_sentence", "ends_sentence"]

# A full stop, question or exclamation mark, CJK ones or an ellipsis, optionally inside closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’)\]]*$")


def ends_sentence(text: str) -> bool:
    return _SENTENCE_END.search(text.strip()) is not None


def as_sentence(text: str) -> str:
    """``text`` stripped, with a full stop added when it does not end a sentence already."""
    body = text.strip()
    return body if ends_sentence(body) else body + "."
