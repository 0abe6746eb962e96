"""Shared fixtures: one local SparkSession per test run, the shared real data, temp dirs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRAPHREC_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests using it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def data_file(shared_data: Path, *parts: str) -> Path:
    p = shared_data.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p


@pytest.fixture(scope="session")
def spark():
    """The session-wide ``local[2]`` SparkSession (started once, ~10 s)."""
    from jobs.runtime.session import get_session

    s = get_session("graphrec-tests", master="local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield s
    s.stop()


@pytest.fixture()
def one_torch_thread():
    """Small tensors: one intra-op thread avoids OpenMP spin contention on shared 2-core machines."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
