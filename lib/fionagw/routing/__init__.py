"""Turning arrivals into transfer requests: routing rules, coupling lists, AutoID."""
