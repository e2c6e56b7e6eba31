"""Sijill: an integrated social registry and social protection delivery system."""

__version__ = "0.1.0"
