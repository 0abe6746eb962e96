"""graphrec_daily — one day of the graphrec loop (configuration only).

    ingest_graph ─┬─ sample_graph ── tune_embedding ── embed_graph ─┬─ friend_knn
                  │                  (ingest_graph ──────┘)        │
                  ├─ profile_graph ── profile_sample (+ sample_graph)│
                  └─ ingest_interactions ──────────────────────────┴─ train_recommender ──┐
    seed_bandit ──────────────────────────────────────────────────────────────────────────┴─ build_candidates
        ── serve_candidates ── simulate_traffic ── export_events ── bandit_update ── publish

The loop closes through the interactions: ``ingest_interactions`` of day ``d`` takes the day's
fresh base, carries the feedback rows of day ``d - 1``'s interactions forward (``--previous``) and
adds day ``d - 1``'s exported positive, acknowledged events (``--feedback``), each ``event_id`` at
most once — so a re-run of a day changes nothing; on a first day both are missing and skipped
(``--missing-ok``). ``profile_graph`` profiles the day's graph (what-if analytics: degrees, reciprocity,
assortativity, clustering, components, cores, distances, PageRank) and ``profile_sample`` profiles the sample
with the same code and compares it with the full graph property by property (the run report shows both). The embedding's propagation settings are tuned on the day's sample
(``tune_embedding``), the user graph's embedding is the recommender's social input (users with
friends and no interactions are served from their friends), and the recommender tunes its own
settings every ``tune_every_days`` days and reuses the last tuned ones in between
(``jobs.train_schedule``).

The bandit steps compute on the day's parameter store ``<work_dir>/bandit/ds=<ds>/`` (seeded from
the latest earlier day, so a re-run of a day reproduces it exactly) and promote each result to the
live store ``<work_dir>/bandit/params/`` that the scoring service serves (``jobs.bandit_day``),
then call the service's ``POST /v1/params/reload``. The day's trending items, staged by
``graphrec_heavy_hitters`` as ``<work_dir>/fresh_items/ds=<ds>/``, are merged when a version is
promoted: ``publish`` (``--finish``) merges them into the day store after the batch update and marks
the day finished, so the final store is the same whichever DAG runs (or re-runs) last.

Every task reads and writes dated folders ``<work_dir>/<table>/ds=<ds>/``. Spark jobs go through
``SparkSubmitOperator`` (connection ``spark_default``: ``local[2]``, ``spark://host:7077``, ``yarn``,
``k8s://…``); training and the candidate graph run the project's Python. Which checkout, Python and
``spark-submit`` are Airflow Variables, resolved when a task runs (see ``graphrec_common``); the
paths and knobs of a run are the DAG Params below (``--conf``/``-c`` JSON).
"""
from __future__ import annotations

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

from graphrec_common import (DEFAULT_ARGS, PY, PYTHON, SERVING_URL, SPARK, START_DATE, dag_params, dated,
                             dated_before, history, job, publish_command, raw_input)

with DAG(
    dag_id="graphrec_daily",
    description="ingest (+ yesterday's feedback) → sample → tune → embed → kNN; train the social DSL recommender → "
                "candidate graph → bandit update → publish",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["graphrec"],
    default_args=DEFAULT_ARGS,
    params=dag_params(
        graph_input=Param("", type="string", description="raw graph; empty: <work_dir>/raw/ds=<ds>/graph/edges"),
        graph_format=Param("parquet", enum=["parquet", "snap", "konect", "adjlist"]),
        interactions_input=Param("", type="string",
                                 description="raw interactions; empty: <work_dir>/raw/ds=<ds>/interactions/interactions"),
        interactions_format=Param("parquet", enum=["parquet", "lightgcn"]),
        ratio=Param(0.1, type="number", exclusiveMinimum=0, maximum=1, description="sample size ratio r"),
        sample_method=Param("rescaled", enum=["rescaled", "random-node", "random-edge", "random-walk", "forest-fire"]),
        dim=Param(64, type="integer", minimum=2, description="embedding dimension"),
        knn_k=Param(20, type="integer", minimum=1, description="friend recommendations per user"),
        model=Param("mf", enum=["mf", "lightgcn"]),
        rec_dim=Param(64, type="integer", minimum=2, description="recommender embedding dimension"),
        density=Param(0.2, type="number", exclusiveMinimum=0, maximum=1, description="DSL parameter density"),
        epochs=Param(10, type="integer", minimum=1, description="epoch ceiling (training stops early)"),
        tune_every_days=Param(7, type="integer", minimum=0,
                              description="the recommender tunes when no earlier day did within N days (0: never)"),
        tune_trials=Param(8, type="integer", minimum=1, description="settings tried by successive halving"),
        clusters=Param(64, type="integer", minimum=1, description="user clusters C of the candidate graph"),
        bandit_k=Param(3, type="integer", minimum=1, description="clusters per user context K"),
        bandit_w=Param(100, type="integer", minimum=1, description="items per cluster W"),
        alpha=Param(1.0, type="number", minimum=0, description="Diag-LinUCB exploration weight"),
        simulate_traffic=Param(False, type="boolean", description="demo: simulated users score and give feedback"),
        traffic_requests=Param(2000, type="integer", minimum=1),
        traffic_population=Param("", type="string",
                                 description="demo: the simulated world (users, interactions); "
                                             "empty: <work_dir>/raw/ds=<ds>/population"),
        seed=Param(0, type="integer"),
    ),
) as dag:
    ingest_graph = SparkSubmitOperator(
        task_id="ingest_graph",
        name="graphrec-ingest-graph",
        application=job("ingest_graph"),
        application_args=[
            "--input", raw_input("graph_input", "graph/edges"),
            "--format", "{{ params.graph_format }}",
            "--drop-self-loops",
            "--output", dated("graph"),
        ],
        **SPARK,
    )
    ingest_interactions = SparkSubmitOperator(
        task_id="ingest_interactions",
        name="graphrec-ingest-interactions",
        application=job("ingest_interactions"),
        application_args=[
            "--input", raw_input("interactions_input", "interactions/interactions"),
            "--format", "{{ params.interactions_format }}",
            "--graph", dated("graph"),
            "--previous", dated_before("interactions"),
            "--feedback", dated_before("events"),
            "--missing-ok",
            "--output", dated("interactions"),
        ],
        **SPARK,
    )

    sample_graph = SparkSubmitOperator(
        task_id="sample_graph",
        name="graphrec-sample-graph",
        application=job("sample_graph"),
        application_args=[
            "--edges", dated("graph"), "--ratio", "{{ params.ratio }}", "--method", "{{ params.sample_method }}",
            "--seed", "{{ params.seed }}", "--output", dated("sample"),
        ],
        **SPARK,
    )
    profile_graph = SparkSubmitOperator(
        task_id="profile_graph",
        name="graphrec-profile-graph",
        application=job("graph_profile"),
        application_args=["--edges", dated("graph"), "--seed", "{{ params.seed }}", "--output", dated("profile")],
        **SPARK,
    )
    profile_sample = SparkSubmitOperator(
        task_id="profile_sample",
        name="graphrec-profile-sample",
        application=job("graph_profile"),
        application_args=[
            "--edges", dated("sample"), "--reference", dated("profile"), "--seed", "{{ params.seed }}",
            "--output", dated("sample_profile"),
        ],
        **SPARK,
    )
    tune_embedding = SparkSubmitOperator(
        task_id="tune_embedding",
        name="graphrec-tune-embedding",
        application=job("tune_embedding"),
        application_args=[
            "--edges", dated("sample"), "--dim", "{{ params.dim }}", "--seed", "{{ params.seed }}",
            "--output", dated("embedding_tuning"),
        ],
        **SPARK,
    )
    embed_graph = SparkSubmitOperator(
        task_id="embed_graph",
        name="graphrec-embed-graph",
        application=job("embed_graph"),
        application_args=[
            "--edges", dated("graph"), "--dim", "{{ params.dim }}", "--seed", "{{ params.seed }}",
            "--settings", dated("embedding_tuning") + "/chosen.json",
            "--output", dated("embedding"),
        ],
        **SPARK,
    )
    friend_knn = SparkSubmitOperator(
        task_id="friend_knn",
        name="graphrec-friend-knn",
        application=job("knn"),
        application_args=[
            "--vectors", dated("embedding"), "--k", "{{ params.knn_k }}", "--exclude-edges", dated("graph"),
            "--output", dated("friends"),
        ],
        **SPARK,
    )
    train_recommender = BashOperator(
        task_id="train_recommender",
        bash_command="FLAGS=$(" + PYTHON + " -m jobs.train_schedule --history " + history("recommender") +
        " --ds {{ ds }} --every {{ params.tune_every_days }} --trials {{ params.tune_trials }}) && " +
        PYTHON + " -m recsys.train --data " + dated("interactions") + " --model {{ params.model }}"
        " --density {{ params.density }} --epochs {{ params.epochs }} --dim {{ params.rec_dim }} --device auto"
        " --seed {{ params.seed }} --no-progress --social-graph " + dated("graph") +
        " --social-vectors " + dated("embedding") + " $FLAGS --output " + dated("recommender"),
        **PY,
    )
    seed_bandit = BashOperator(
        task_id="seed_bandit",
        bash_command=PYTHON + " -m jobs.bandit_day seed --history " + history("bandit") + " --ds {{ ds }}"
        " && ls " + dated("bandit"),
        **PY,
    )
    build_candidates = BashOperator(
        task_id="build_candidates",
        bash_command=PYTHON + " -m recsys.candidates --user-vectors " + dated("recommender") + "/user_vectors"
        " --item-vectors " + dated("recommender") + "/item_vectors --params " + dated("bandit") +
        " --clusters {{ params.clusters }} --k {{ params.bandit_k }} --w {{ params.bandit_w }}"
        " --alpha {{ params.alpha }} --seed {{ params.seed }}",
        **PY,
    )
    serve_candidates = BashOperator(
        task_id="serve_candidates",
        bash_command=publish_command(dated("published") + "/candidates"),
        **PY,
    )
    simulate_traffic = BashOperator(
        task_id="simulate_traffic",
        bash_command="{% if params.simulate_traffic %}" + PYTHON + " -m jobs.demo.simulate_traffic"
        " --url " + SERVING_URL +
        " --interactions " + dated("interactions") + " --requests {{ params.traffic_requests }}"
        " --seed {{ params.seed }} --ds {{ ds }} --population " + raw_input("traffic_population", "population") +
        " --output " + dated("traffic") +
        "{% else %}echo 'simulate_traffic is off: live traffic feeds the service'{% endif %}",
        **PY,
    )
    export_events = BashOperator(
        task_id="export_events",
        bash_command=PYTHON + " -m jobs.export_events --url " + SERVING_URL + " --output " + dated("events") +
        " --since-from " + dated("bandit") + "/SEED.json",
        **PY,
    )
    bandit_update = SparkSubmitOperator(
        task_id="bandit_update",
        name="graphrec-bandit-update",
        application=job("bandit_update"),
        application_args=[
            "--events", dated("events") + "/events", "--impressions", dated("events") + "/impressions",
            "--params", dated("bandit"), "--output", dated("bandit"),
        ],
        **SPARK,
    )
    publish = BashOperator(
        task_id="publish",
        bash_command=publish_command(dated("published") + "/bandit", finish=True),
        **PY,
    )

    ingest_graph >> [sample_graph, embed_graph, ingest_interactions, profile_graph]
    [sample_graph, profile_graph] >> profile_sample
    sample_graph >> tune_embedding >> embed_graph >> [friend_knn, train_recommender]
    ingest_interactions >> train_recommender >> build_candidates >> serve_candidates >> simulate_traffic
    seed_bandit >> build_candidates
    simulate_traffic >> export_events >> bandit_update >> publish
    seed_bandit >> export_events
