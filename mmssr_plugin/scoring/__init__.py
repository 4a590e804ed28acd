"""Scoring a pool: scorer and job settings, worker processes, the resumable score store, summaries."""
