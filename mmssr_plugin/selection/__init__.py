"""Choosing the subset, with numpy only: the budget, style bins, score ranking, the mmSSR sampler
and the selection methods (``mmssr``, ``random``). Nothing here sees a model or a data file."""
