"""What a scoring job needs to know: its scorer (``ScorerConfig``) and how it runs (``JobConfig``).

Both are plain dataclasses whose fields carry a ``help`` text (and ``choices`` where the values are
fixed): the YAML block's ``--help-config`` listing and the ``mmssr-cli score`` options are generated
from them, so defaults and help live here only.
"""

from __future__ import annotations

from dataclasses import InitVar, asdict, dataclass, field, fields
from typing import Any

from mmssr_plugin.engines.hf.config import (
    ATTENTION_IMPLEMENTATIONS,
    DEFAULT_MAX_BRANCH_ROWS,
    DEFAULT_MAX_STYLE_TOKENS,
    MODEL_LAYOUTS,
    SCORE_PARSINGS,
    STYLE_PARSINGS,
    check_settings,
)

BACKENDS = ("hf", "fake")
EXECUTORS = ("local", "ray")
# Below this probability mass on "0".."5" the scorer did not answer with a digit.
DEFAULT_MIN_DIGIT_MASS = 0.5
DEFAULT_SHARD_SIZE = 64
DEFAULT_TEMPLATE = "qwen2_vl"


@dataclass
class ScorerConfig:
    """The scorer (and styler) of a scoring job.

    ``check=False`` keeps the values as given without validating them: a configuration that is
    recorded (the random method's block) but never used to score.
    """

    backend: str = field(
        default="hf", metadata={"help": f"Scoring engine: one of {BACKENDS}.", "choices": BACKENDS}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Scorer model: local path or hub id."}
    )
    adapter_name_or_path: str | None = field(
        default=None, metadata={"help": "LoRA adapter of the scorer (PEFT folder), optional."}
    )
    quantization_bit: int | None = field(
        default=None,
        metadata={"help": "Load the scorer in 4 or 8 bit with bitsandbytes.", "choices": (4, 8)},
    )
    template: str = field(
        default=DEFAULT_TEMPLATE,
        metadata={"help": "LLaMA-Factory chat template (not used by the llava_qwen layout: leave "
                          "it unset there, or mmssr_llava_qwen)."},
    )
    styler_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Styler model when it is not the scorer itself."}
    )
    styler_adapter_name_or_path: str | None = field(
        default=None, metadata={"help": "LoRA adapter of a separate styler."}
    )
    infer_dtype: str = field(
        default="auto", metadata={"help": "auto, float32, float16 or bfloat16."}
    )
    batch_size: int = field(default=8, metadata={"help": "Samples per engine batch."})
    model_layout: str = field(
        default="auto",
        metadata={"help": "llava_qwen: the released mmSSR checkpoints (LLaVA-NeXT), run with the "
                          "authors' prompt layout; auto recognises them from config.json.",
                  "choices": MODEL_LAYOUTS},
    )
    score_parsing: str = field(
        default="digits",
        metadata={"help": "digits (digit probabilities) or authors_int (int() of the greedy "
                          "answer, as the authors' script).", "choices": SCORE_PARSINGS},
    )
    style_parsing: str = field(
        default="default",
        metadata={"help": "default or authors (plain comma split, case-sensitive match).",
                  "choices": STYLE_PARSINGS},
    )
    max_style_tokens: int = field(
        default=DEFAULT_MAX_STYLE_TOKENS, metadata={"help": "Longest style answer generated."}
    )
    max_branch_rows: int = field(
        default=DEFAULT_MAX_BRANCH_ROWS,
        metadata={"help": "Most query branches in one forward pass (on CUDA fewer when free "
                          "memory is short)."},
    )
    image_max_pixels: int | None = field(
        default=None,
        metadata={"help": "Largest image area in pixels (LLaMA-Factory's; default 768*768)."},
    )
    image_min_pixels: int | None = field(
        default=None,
        metadata={"help": "Smallest image area in pixels (LLaMA-Factory's; default 32*32)."},
    )
    flash_attn: str = field(
        default="sdpa",
        metadata={"help": "Attention implementation (LLaMA-Factory's names): sdpa or disabled "
                          "(eager) run a sample's query branches in one row over its shared "
                          "cache; fa2/fa3 one row per branch.",
                  "choices": ATTENTION_IMPLEMENTATIONS},
    )
    encode_workers: int | None = field(
        default=None,
        metadata={"help": "Threads encoding prompts and images ahead of the model (default: 1 "
                          "on CUDA, 0 on CPU)."},
    )
    min_digit_mass: float = field(
        default=DEFAULT_MIN_DIGIT_MASS,
        metadata={"help": "Below this probability on 0..5 a score is missing (not a digit)."},
    )
    check: InitVar[bool] = True

    def __post_init__(self, check: bool) -> None:
        if not check:
            return
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "hf" and not self.model_name_or_path:
            raise ValueError("the hf backend needs model_name_or_path")
        if self.quantization_bit not in (None, 4, 8):
            raise ValueError(f"quantization_bit must be 4, 8 or unset, got {self.quantization_bit}")
        check_settings(self)
        if not 0.0 <= self.min_digit_mass <= 1.0:
            raise ValueError(f"min_digit_mass must lie in [0, 1], got {self.min_digit_mass}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON data (the job file a worker rebuilds the config from)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], check: bool = True) -> ScorerConfig:
        """Rebuild from :meth:`to_dict` output (or a mapping of field names); unknown keys fail."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown scorer keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values, check=check)


@dataclass(frozen=True)
class JobConfig:
    """How a scoring job runs: where (executor), how many workers, and the shard size (the unit of
    resumption)."""

    workers: int | None = field(
        default=None,
        metadata={"help": "CPU scoring workers (with GPUs: one per GPU of the machine or cluster)."},
    )
    shard_size: int = field(
        default=DEFAULT_SHARD_SIZE, metadata={"help": "Samples per resumable score shard."}
    )
    executor: str = field(
        default="local",
        metadata={
            "help": "Where scoring runs: local (worker processes on this machine) or ray "
                    "(an actor pool on a Ray cluster, through Ray Data).",
            "choices": EXECUTORS,
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster to join with the ray executor: auto (RAY_ADDRESS or the cluster "
                    "of `ray start`) or HOST:PORT; unset starts a private local Ray instance.",
        },
    )

    def __post_init__(self) -> None:
        if self.workers is not None and not _positive_int(self.workers):
            raise ValueError(
                f"workers must be an integer >= 1 (or unset: one per visible GPU, else 1), "
                f"got {self.workers!r}"
            )
        if not _positive_int(self.shard_size):
            raise ValueError(f"shard_size must be an integer >= 1, got {self.shard_size!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError("ray_address is used by the ray executor only; set executor: ray")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
