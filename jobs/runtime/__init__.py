"""The runtime the jobs share: the Spark session and the project zip (:mod:`~jobs.runtime.session`), the driver's
class-data-sharing archive (:mod:`~jobs.runtime.cds`), atomic publishing (:mod:`~jobs.runtime.output`), the dated
layout of a pipeline run (:mod:`~jobs.runtime.layout`) and a job's ``main`` (:func:`jobs.runtime.cli.run_job`)."""
