"""spark-submit entry points: parse config -> session -> read -> core -> write (atomically)."""
