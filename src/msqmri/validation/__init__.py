"""Scoring the workflow's outputs against the synthetic cohort's planned truth (tests and benchmarks)."""
