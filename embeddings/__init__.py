"""Network embedding: ProNE (:mod:`.prone`), DistNE partitioning (:mod:`.partition`), fusion
(:mod:`.fusion`), the single-process DistNE pipeline (:mod:`.distne`), evaluation protocols
(:mod:`.evaluate`), kNN search (:mod:`.knn`). :mod:`.spark` (imported only by ``jobs/``) runs
DistNE and kNN on Spark."""
