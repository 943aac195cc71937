"""The frame-count rule (planning/frames.py): ``step * k + 1`` frames, or whole chunks cut to it."""

from __future__ import annotations

from framecast.engine.planning.frames import chunks_for, longest_on_rule, on_rule


def test_a_one_pass_model_makes_the_smallest_step_k_plus_1_count_that_holds_the_frames():
    assert [on_rule(f, 4) for f in (1, 80, 81, 120, 121)] == [1, 81, 81, 121, 121]
    assert on_rule(240, 8) == 241 and longest_on_rule(81, 4) == 81 and longest_on_rule(100, 4) == 97


def test_a_chunked_model_makes_whole_chunks_cut_to_the_rule():
    # 33-frame chunks cut to 4k + 1: 1 chunk 33, 2 chunks 66 -> 65, 4 chunks 132 -> 129, 8 chunks 264 -> 261.
    assert [on_rule(f, 4, 33) for f in (24, 33, 48, 120, 192, 240)] == [33, 33, 65, 129, 197, 261]
    # The cut can fall below a chunk boundary: 66 frames need a third chunk, since two make only 65.
    assert (chunks_for(65, 4, 33), chunks_for(66, 4, 33), on_rule(66, 4, 33)) == (2, 3, 97)
    assert longest_on_rule(1449, 4, 33) == 1449 and longest_on_rule(1452, 4, 33) == 1449
    assert longest_on_rule(64, 4, 33) == 33
