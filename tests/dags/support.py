"""Shared set-up of the DAG tests (``.venv-airflow``): a private AIRFLOW_HOME (SQLite) and the repo's
``dags/``. Imported once (by ``conftest.py`` and the test modules alike), before any Airflow import,
because Airflow reads its configuration on first import."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
PROJECT_PY = Path(os.environ.get("GRAPHREC_PYTHON", ROOT / ".venv" / "bin" / "python"))  # the project's .venv
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
# Airflow's BundleDagBag puts the dags-folder bundle on sys.path (so DAG files import graphrec_common);
# the plain DagBag the tests use does not.
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))


def airflow_bin() -> Path:
    """The ``airflow`` CLI of the interpreter running the tests (``.venv-airflow``)."""
    return Path(sys.executable).with_name("airflow")
