"""DAG tests run in ``.venv-airflow``: a private AIRFLOW_HOME (SQLite) and the repo's ``dags/``.

The environment is set at import time, before any test module imports Airflow (its configuration
is read once, on first import).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="graphrec-airflow-test-"))

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
    "SPARK_LOCAL_IP": "127.0.0.1",
}
os.environ.update(AIRFLOW_ENV)


def airflow_bin() -> Path:
    """The ``airflow`` CLI of the interpreter running the tests (``.venv-airflow``)."""
    return Path(sys.executable).with_name("airflow")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the private AIRFLOW_HOME."""
    r = subprocess.run([str(airflow_bin()), "db", "migrate"], env={**os.environ, **AIRFLOW_ENV},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return AIRFLOW_HOME
