"""Make ``spark-submit jobs/<job>.py`` import the project on the driver.

spark-submit puts the script's folder (``jobs/``) on ``sys.path``, not the project root. Each job
does ``import bootstrap  # noqa`` guarded by ``__package__`` before importing the project; when the
project arrives as ``--py-files graphrec.zip`` the insert is harmless.
"""
import sys
from pathlib import Path

_root = str(Path(__file__).resolve().parents[1])
if _root not in sys.path:
    sys.path.insert(0, _root)
