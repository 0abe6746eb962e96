"""spark-submit entry points: parse config -> session -> read -> core -> write (atomically).

The jobs' shared runtime lives in :mod:`jobs.runtime`, the ``make run`` demo tooling in :mod:`jobs.demo`."""
