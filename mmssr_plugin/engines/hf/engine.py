"""The Hugging Face engine: a scorer (and styler) loaded and prompted through LLaMA-Factory.

Models load with LLaMA-Factory's own API (``get_infer_args``, ``load_tokenizer``,
``get_template_and_fix_tokenizer``, ``load_model``), so LoRA adapters, bitsandbytes 4/8-bit and
dtypes behave as in ``llamafactory-cli``, and prompts are encoded by the same chat template and
multimodal plugin a scorer was trained with: identical tokens in training and scoring.

All queries of a sample share the system message, image and conversation; their token prefix
runs once and each query branches from its cache (:mod:`.kv_branching`). This module imports
torch and LLaMA-Factory only when an engine is built, so ``describe`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmssr_plugin.core.prompts import all_queries
from mmssr_plugin.core.style_parsing import StyleAnswer, parse_styles
from mmssr_plugin.core.taxonomy import DIGITS, STYLE_QUERY, Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines.base import ScoringEngine
from mmssr_plugin.engines.hf.config import HfEngineSettings
from mmssr_plugin.engines.hf.prompt_encoding import EncodedSample, common_prefix_length


class _LoadedVLM:
    """One model loaded through LLaMA-Factory, with its tokenizer, template and prompt encoder."""

    def __init__(
        self, model_name_or_path: str, adapter_name_or_path: str | None,
        settings: HfEngineSettings,
    ) -> None:
        from llamafactory.data import get_template_and_fix_tokenizer
        from llamafactory.extras.constants import IMAGE_PLACEHOLDER
        from llamafactory.hparams import get_infer_args
        from llamafactory.model import load_model, load_tokenizer

        from mmssr_plugin.engines.hf.prompt_encoding import TemplatePromptEncoder

        args: dict[str, Any] = {
            "model_name_or_path": model_name_or_path,
            "template": settings.template,
            "infer_dtype": settings.infer_dtype,
            "flash_attn": settings.flash_attn,
            **{name: getattr(settings, name) for name in ("image_max_pixels", "image_min_pixels")
               if getattr(settings, name) is not None},
            **dict(settings.extra_args),
        }
        if adapter_name_or_path:
            args["adapter_name_or_path"] = adapter_name_or_path
        if settings.quantization_bit:
            args.update(quantization_bit=settings.quantization_bit, quantization_method="bnb")
        model_args, data_args, finetuning_args, _ = get_infer_args(args)
        loaded = load_tokenizer(model_args)
        self.tokenizer, self.processor = loaded["tokenizer"], loaded["processor"]
        self.template = get_template_and_fix_tokenizer(self.tokenizer, data_args)
        self.model = load_model(self.tokenizer, model_args, finetuning_args, is_trainable=False)
        if settings.infer_dtype != "auto" and not settings.quantization_bit:
            # LLaMA-Factory loads with torch_dtype="auto" (the checkpoint's dtype) whatever
            # infer_dtype says; the asked dtype is applied here.
            self.model.to(model_args.compute_dtype)
        self._set_up_running(settings, list(self.template.get_stop_token_ids(self.tokenizer)))
        config = self.brancher.config
        self.mm_token_ids = {
            t for t in (getattr(config, "image_token_id", None),
                        getattr(config, "video_token_id", None)) if t is not None
        }
        self.encoder = TemplatePromptEncoder(self.tokenizer, self.template, self.processor,
                                             IMAGE_PLACEHOLDER, self.mm_token_ids)

    def _set_up_running(self, settings: HfEngineSettings, stop_ids: list[int],
                        repetition_penalty: float = 1.0) -> None:
        """Digit and stop ids, the prefix brancher, the batch runner and the token counters of
        the loaded ``self.model`` and ``self.tokenizer`` (the encoder is the caller's)."""
        from mmssr_plugin.engines.hf.batch_runner import BatchRunner
        from mmssr_plugin.engines.hf.kv_branching import PrefixBrancher

        self.digit_ids = [_single_token(self.tokenizer, digit) for digit in DIGITS]
        self.stop_ids = stop_ids
        pad = self.tokenizer.pad_token_id
        self.brancher = PrefixBrancher(self.model, pad if pad is not None else self.stop_ids[0],
                                       max_rows=settings.max_branch_rows,
                                       repetition_penalty=repetition_penalty)
        self.runner = BatchRunner(self, settings.encode_workers)
        self.prompt_tokens = 0  # tokens of all full prompts seen
        self.computed_tokens = 0  # tokens actually run (prefixes once, then suffixes)

    def encode(self, sample: Sample, queries: Sequence[str]) -> EncodedSample:
        """Every query prompt of a sample: the shared token prefix and one suffix per query."""
        return self.encoder.encode(sample, queries)

    def run(
        self, samples: Sequence[Sample], queries: Sequence[str], generate_last: bool,
        batch_size: int, max_new_tokens: int,
    ) -> tuple[np.ndarray, list[str]]:
        """Digit probabilities for each query (all but the last if ``generate_last``) and the
        greedy answer to the last query (if ``generate_last``), for every sample.

        Returns:
            float32 ``[N, n_scored, 6]`` probabilities and ``N`` generated texts (or ``[]``).
        """
        n_scored = len(queries) - int(generate_last)
        probs = np.zeros((len(samples), n_scored, len(DIGITS)), dtype=np.float32)
        texts = [""] * len(samples) if generate_last else []

        def run_batch(indices: list[int], batch: list[EncodedSample], mm_inputs: dict) -> None:
            state = self._encode_prefixes(batch, mm_inputs)
            if n_scored:
                probs[indices] = self._score_branches(
                    state, [item.suffixes[:n_scored] for item in batch])
            if generate_last:
                generated = self.brancher.branch_generate(
                    state, list(range(len(batch))), [item.suffixes[-1] for item in batch],
                    max_new_tokens, self.stop_ids,
                )
                self.computed_tokens += sum(len(item.suffixes[-1]) for item in batch)
                for i, ids in zip(indices, generated):
                    texts[i] = self.tokenizer.decode(ids, skip_special_tokens=True)

        self.runner.run(samples, queries, batch_size, run_batch)
        return probs, texts

    def _score_branches(self, state, suffixes: list[list[list[int]]]) -> np.ndarray:
        """Digit probabilities ``[B, Q, 6]`` after each sample's query suffixes.

        The suffixes of one sample may share a beginning of their own (the capability queries do,
        up to their keyword, when the style query split the prefix earlier): it runs once, as an
        extension of the prefix, before branching.
        """
        shared = [common_prefix_length(group) if len(group) > 1 else 0 for group in suffixes]
        if any(shared):
            state = self.brancher.extend(state, [g[0][:k] for g, k in zip(suffixes, shared)])
        tails = [[s[k:] for s in group] for group, k in zip(suffixes, shared)]
        self.computed_tokens += sum(shared) + sum(len(t) for group in tails for t in group)
        if self.brancher.can_pack:
            return self.brancher.packed_probs(state, tails, self.digit_ids).numpy()
        rows = [b for b, group in enumerate(tails) for _ in group]
        flat = [t for group in tails for t in group]
        probs = self.brancher.branch_probs(state, rows, flat, self.digit_ids)
        return probs.numpy().reshape(len(suffixes), -1, len(self.digit_ids))

    def _encode_prefixes(self, batch: Sequence[EncodedSample], mm_inputs: dict):
        """Run the batch's prefixes (with its collated images) once; count the tokens."""
        self.prompt_tokens += sum(
            len(item.prefix) * len(item.suffixes) + sum(map(len, item.suffixes)) for item in batch
        )
        self.computed_tokens += sum(len(item.prefix) for item in batch)
        return self.brancher.encode_prefixes([item.prefix for item in batch], mm_inputs)


class HfEngine(ScoringEngine):
    """Scorer and styler through Hugging Face transformers, loaded by LLaMA-Factory.

    Built from :class:`~mmssr_plugin.engines.hf.config.HfEngineSettings` (same arguments; the
    model path may be given positionally).
    """

    name = "hf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Load the scorer (and a separate styler); arguments as :class:`HfEngineSettings`
        (``max_rows`` is accepted for ``max_branch_rows``)."""
        settings = _settings(*args, **kwargs)
        self.settings = settings
        self.batch_size = max(1, settings.batch_size)
        self.max_style_tokens = settings.max_style_tokens
        self.authors_styles = settings.style_parsing == "authors"
        self.scorer = _load_vlm(settings, settings.model_name_or_path,
                                settings.adapter_name_or_path)
        self.styler = self.scorer
        if settings.separate_styler:
            self.styler = _load_vlm(
                settings, settings.styler_model_name_or_path or settings.model_name_or_path,
                settings.styler_adapter_name_or_path,
            )

    def score(self, samples: Sequence[Sample], capabilities: Sequence[Capability]) -> np.ndarray:
        """Digit probabilities ``[N, C, 6]`` after each capability query (one shared prefix);
        with ``authors_int`` parsing, one-hot rows of the parsed greedy answers."""
        queries = all_queries(capabilities, with_style=False)
        if self.settings.score_parsing == "authors_int":
            from mmssr_plugin.engines.hf.answers import authors_int_probs, generate_answers

            return authors_int_probs(generate_answers(self.scorer, samples, queries,
                                                      self.batch_size))
        probs, _ = self.scorer.run(samples, queries, False, self.batch_size, 0)
        return probs

    def styles(self, samples: Sequence[Sample]) -> list[StyleAnswer]:
        """Greedy style answers (up to ``max_style_tokens``), parsed."""
        _, texts = self.styler.run(samples, [STYLE_QUERY], True, self.batch_size,
                                   self.max_style_tokens)
        return [parse_styles(text, authors_rules=self.authors_styles) for text in texts]

    def score_and_style(
        self, samples: Sequence[Sample], capabilities: Sequence[Capability]
    ) -> tuple[np.ndarray, list[StyleAnswer]]:
        """Scores and styles; with one model for both, all C+1 queries share one prefix pass."""
        if self.styler is not self.scorer or self.settings.score_parsing != "digits":
            return super().score_and_style(samples, capabilities)
        probs, texts = self.scorer.run(samples, all_queries(capabilities), True, self.batch_size,
                                       self.max_style_tokens)
        return probs, [parse_styles(text, authors_rules=self.authors_styles) for text in texts]

    @property
    def skipped_fraction(self) -> float:
        """Share of prompt tokens so far that prefix sharing did not have to run."""
        total = self.scorer.prompt_tokens + (
            self.styler.prompt_tokens if self.styler is not self.scorer else 0)
        run = self.scorer.computed_tokens + (
            self.styler.computed_tokens if self.styler is not self.scorer else 0)
        return 1.0 - run / total if total else 0.0

    def identity(self) -> dict[str, Any]:
        """See :meth:`describe`."""
        return self.settings.identity()

    @staticmethod
    def describe(*args: Any, **kwargs: Any) -> dict[str, Any]:
        """Identity of an engine built with these arguments (:class:`HfEngineSettings`), without
        loading anything. Batch size and branch rows are left out: they change float rounding only.
        """
        return _settings(*args, **kwargs).identity()


def _settings(*args: Any, **kwargs: Any) -> HfEngineSettings:
    if "max_rows" in kwargs:  # the earlier name of max_branch_rows
        kwargs["max_branch_rows"] = kwargs.pop("max_rows")
    return HfEngineSettings(*args, **kwargs)


def _load_vlm(settings: HfEngineSettings, model_name_or_path: str,
              adapter_name_or_path: str | None) -> _LoadedVLM:
    """The model slot for a checkpoint: LLaMA-Factory's loader or the ``llava_qwen`` one."""
    if settings.layout(model_name_or_path) == "llava_qwen":
        from mmssr_plugin.engines.hf.llava_qwen_engine import LoadedLlavaQwen

        return LoadedLlavaQwen(model_name_or_path, adapter_name_or_path, settings)
    return _LoadedVLM(model_name_or_path, adapter_name_or_path, settings)


def _single_token(tokenizer: Any, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"the scorer's tokenizer encodes the digit {text!r} as {len(ids)} tokens {ids}; "
            "digit scores need each of 0..5 to be a single token"
        )
    return ids[0]
