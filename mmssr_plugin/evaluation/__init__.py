"""Scorer evaluation: how well a scorer agrees with held-out teacher labels.

The layer sits beside curation: it reads label files and scorer data (curation, data), runs
scorers through the engine interface (engines), turns digit probabilities into scores
(scoring.digits) and draws its page with the report's HTML and plot helpers. The selection stage
reads the per-scorer records it leaves in the cache (:mod:`.records`). Importing it never imports
torch.
"""
