"""LLaMA-Factory integration: the ``data_selection:`` block, the start-up hook and the stage."""
