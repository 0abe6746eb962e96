"""The R-MAT graphs of the embedding benchmark's scaling summary, shared by ``benchmarks.embedding``
(which measures them) and ``benchmarks.plots`` (which draws them), so neither imports the other."""

SCALING_GRAPHS = ("rmat16", "rmat18", "rmat19", "rmat20")  # ≈ 10⁶, 4·10⁶, (7.6·10⁶), 1.6·10⁷ edges
