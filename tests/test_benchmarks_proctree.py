"""The benchmarks' child-process meters (benchmarks.proctree): memory, CPU, output, results, failures."""
import os
import sys
import time

import pytest

from benchmarks.proctree import run_call, run_tree

# A parent that starts a child; the child holds 200 MiB of touched memory and burns CPU for ~0.6 s.
CHILD = "import time; b = bytearray(200 << 20); t = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
PARENT = f"import subprocess, sys; print('from the parent'); subprocess.run([sys.executable, '-c', {CHILD!r}], check=True)"


def test_measures_the_whole_tree():
    run = run_tree([sys.executable, "-c", PARENT], interval=0.05)
    assert run.returncode == 0
    assert run.peak_mb > 200  # the grandchild's bytearray counts
    assert 10 < run.python_peak_mb < 200  # the first Python process alone does not hold it
    assert run.cpu_s >= 0.5
    assert run.seconds >= 0.6
    assert "from the parent" in run.output


def test_failure_and_environment_reach_the_caller():
    run = run_tree([sys.executable, "-c", "import os, sys; print(os.environ['PROCTREE_X']); sys.exit(3)"],
                   env={"PROCTREE_X": "seen"})
    assert run.returncode == 3 and "seen" in run.output


def test_timeout_kills():
    run = run_tree([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert run.returncode != 0 and run.seconds < 10


def _hold(mib: int, seconds: float) -> int:
    b = bytearray(mib << 20)
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass
    return len(b) >> 20


def _crash() -> None:
    os._exit(5)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_run_call_returns_the_result_with_its_costs(start):
    run = run_call(_hold, 150, 0.3, start=start, interval=0.05)
    assert run.result == 150 and not run.timed_out
    assert run.peak_mb > 150 and run.cpu_s >= 0.3 and run.seconds >= 0.3


def test_run_call_timeout_and_crash():
    run = run_call(time.sleep, 30, timeout=0.5)
    assert run.timed_out and run.result is None and run.seconds is None
    with pytest.raises(RuntimeError, match="exited with 5"):
        run_call(_crash)
