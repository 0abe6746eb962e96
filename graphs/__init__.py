"""Graph tables, readers, generators, degree matrices and samplers (pure numpy/scipy/pyarrow)."""
