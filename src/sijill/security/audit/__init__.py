"""The audit chain: append-only, hash-chained records of who did what, and its verification."""
