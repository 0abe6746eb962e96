"""Fixtures of the DAG tests; the environment itself is set by :mod:`tests.dags.support` on import."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.dags.support import AIRFLOW_ENV, AIRFLOW_HOME, airflow_bin


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the private AIRFLOW_HOME."""
    r = subprocess.run([str(airflow_bin()), "db", "migrate"], env={**os.environ, **AIRFLOW_ENV},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return AIRFLOW_HOME
