"""Offline test helpers: a tiny Qwen2-VL and a tiny LLaVA-NeXT ``llava_qwen`` checkpoint, built
locally (no network), for tests and demos.

Importing this package is cheap; torch and transformers load only when a model is built.
"""

from mmssr_plugin.testing.tiny_llava_qwen import build_tiny_llava_qwen, tiny_llava_qwen_dir
from mmssr_plugin.testing.tiny_vlm import DEFAULT_CACHE_ROOT_ENV, TINY_VLM_VERSION, build_tiny_qwen2vl, tiny_vlm_dir

__all__ = ["DEFAULT_CACHE_ROOT_ENV", "TINY_VLM_VERSION", "build_tiny_llava_qwen",
           "build_tiny_qwen2vl", "tiny_llava_qwen_dir", "tiny_vlm_dir"]
