"""The authors' released file formats: their pool JSON, their score files, their selection output.

Modules: ``pool`` (streaming the pool), ``score_files`` (parsing ``<capability>.jsonl`` and
``style.jsonl``), ``rules`` (how the authors read a response), ``pool_scores`` (score files
matched to the pool), ``records`` (copying selected records out of the pool).
"""
