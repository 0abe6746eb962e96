"""The ``make run`` demo around the jobs: the multi-day driver (:mod:`~jobs.demo.run_daily`), generated inputs
(:mod:`~jobs.demo.inputs`, :mod:`~jobs.demo.users`), the scoring service and simulated traffic
(:mod:`~jobs.demo.service`, :mod:`~jobs.demo.simulate_traffic`), the DAG's console progress
(:mod:`~jobs.demo.dag_progress`) and the run report (:mod:`~jobs.demo.report`)."""
