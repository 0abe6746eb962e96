"""The benchmarks' child-process meter (benchmarks.proctree.run_tree): memory, CPU, output, failures."""
import sys

from benchmarks.proctree import run_tree

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
