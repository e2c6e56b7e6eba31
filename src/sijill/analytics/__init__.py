"""Analytics: what the registry holds, in aggregates and pseudonymised releases."""
