"""Every reader given corrupted real-format files (hypothesis; issue 31 item 4): a sane result or the
project's InputFormatError naming the input (and the line of a bad text line) — nothing else.
The strategies live in :mod:`benchmarks.fuzz_inputs`, which runs them with more examples."""
from __future__ import annotations

import os

import pytest

from benchmarks.fuzz_inputs import TARGETS, run_target

EXAMPLES = int(os.environ.get("GRAPHREC_FUZZ_EXAMPLES", "60"))


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_reader_refuses_corrupt_input_clearly(target):
    stats = run_target(target, EXAMPLES, raise_first=True)
    assert stats["tried"] >= EXAMPLES // 2 and stats["unhandled"] == 0
    assert stats["refused"] > 0                       # the corruptions do reach the reader's checks
