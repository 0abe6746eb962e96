"""The workload :func:`jobs.runtime.cds.build` runs in a throw-away driver to record its class-data-sharing archive.

Apart from :mod:`jobs.runtime.cds` (which only names it, in the child's command line) because it needs a session:
:mod:`jobs.runtime.session` imports :mod:`jobs.runtime.cds` for the driver's Java options, so no import cycle.
"""
from __future__ import annotations

import os
import tempfile


def workload() -> None:
    """Touch the classes a graphrec job loads: Parquet, shuffles, joins, Arrow UDFs, writes."""
    import pandas as pd
    from pyspark.sql import functions as F

    from jobs.runtime.session import get_session

    spark = get_session("graphrec-cds", conf={"spark.driver.extraJavaOptions": os.environ["GRAPHREC_CDS_DUMP"]})
    with tempfile.TemporaryDirectory() as tmp:
        df = spark.range(20_000).selectExpr("id", "id % 97 AS k", "CAST(rand(1) AS FLOAT) AS w")
        df.write.parquet(f"{tmp}/a")
        a = spark.read.parquet(f"{tmp}/a")
        agg = a.groupBy("k").agg({"w": "sum", "id": "count"})
        j = a.join(agg, "k").join(F.broadcast(a.selectExpr("id", "k AS k2").limit(500)), "id", "left")
        j.selectExpr("k", "id", "w").repartition(4, "k").sortWithinPartitions("id").write.parquet(f"{tmp}/b")

        def per_group(pdf: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"k": [pdf.k.iloc[0]], "n": [len(pdf)]})

        spark.read.parquet(f"{tmp}/b").groupBy("k").applyInPandas(per_group, "k long, n long").write.parquet(f"{tmp}/c")

        def arrow(batches):
            yield from batches

        spark.read.parquet(f"{tmp}/c").mapInArrow(arrow, "k long, n long").toPandas()
    spark.stop()
