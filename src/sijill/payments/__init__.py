"""Payments: instruments, payment runs and batches, provider files, reconciliation and the
double-entry ledger of who got what, when and how."""
