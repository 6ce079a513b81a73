"""The benchmark harness: a real gateway on its own PostgreSQL, load from separate processes, ceilings beside it."""
