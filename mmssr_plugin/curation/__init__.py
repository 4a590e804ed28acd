"""Teacher labels and scorer training data for a capability of one's own.

A curate run (``run``) picks N valid samples of a pool (``pick``: seeded, prefix-stable), asks an
OpenAI-compatible teacher VLM about each (``teacher_prompt``, ``teacher_client`` with
``teacher_config`` and ``backoff``) for 0..5 scores and interaction styles, validates every answer
(``answers``: nothing is ever guessed) and appends it to a label file (``labels``: format, resume).
``scorer_data`` turns label files into a registered dataset for training a scorer; ``errors``
holds the exceptions.
"""
