"""Record linkage: knowing that two records are the same person, within the registry (dedup)
and against other agencies' lists, scored by a Fellegi-Sunter model (Splink on DuckDB)."""
