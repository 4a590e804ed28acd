"""One scoring worker: loads the engine once and scores its share of the pending shards.

Run as ``python -m mmssr_plugin.scoring.worker JOB.json WORKER_INDEX``; the job file is written by
:mod:`mmssr_plugin.scoring.job`. Workers split the shards by index (shard i goes to worker i mod W), so
they never touch the same shard.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mmssr_plugin.data.samples import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.store import ScoreStore, Shard, ShardResult
from mmssr_plugin.core.taxonomy import Capability


def write_samples(path: Path, samples: Sequence[Sample]) -> None:
    """Write samples as JSON lines for worker processes."""
    with open(path, "w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(asdict(sample), ensure_ascii=False) + "\n")


def read_samples(path: Path) -> list[Sample]:
    """Read samples written by :func:`write_samples`."""
    samples = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for key in ("turns", "images", "problems"):
                row[key] = tuple(row[key])
            samples.append(Sample(**row))
    return samples


def build_engine(config: ScorerConfig) -> Any:
    """Construct the configured scoring engine (loads the model for the hf backend)."""
    from mmssr_plugin.engines import get_engine

    return get_engine(config)


def score_chunk(
    engine: Any, samples: Sequence[Sample], capabilities: Sequence[Capability]
) -> ShardResult:
    """Score and style one shard; invalid or failing samples become recorded failures."""
    n, n_caps = len(samples), len(capabilities)
    probs = np.full((n, n_caps, 6), np.nan, dtype=np.float32)
    styles: list[tuple[str, ...]] = [()] * n
    style_raw: list[str | None] = [None] * n
    unmatched = [0] * n
    errors: list[str | None] = [None] * n
    valid = []
    for i, sample in enumerate(samples):
        if sample.problems:
            errors[i] = "invalid sample: " + "; ".join(sample.problems)
        else:
            valid.append(i)

    def run(indices: list[int]) -> None:
        batch = [samples[i] for i in indices]
        batch_probs, answers = engine.score_and_style(batch, capabilities)
        for row, i in enumerate(indices):
            probs[i] = batch_probs[row]
            styles[i] = tuple(answers[row].styles)
            style_raw[i] = answers[row].raw
            unmatched[i] = answers[row].unmatched

    if valid:
        try:
            run(valid)
        except Exception:  # isolate the failing sample(s); the rest of the shard is kept
            for i in valid:
                try:
                    run([i])
                except Exception as exc:  # noqa: BLE001 - recorded as a failure with its reason
                    errors[i] = f"scoring failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return ShardResult(
        uids=[s.uid for s in samples],
        probs=probs,
        styles=styles,
        style_raw=style_raw,
        style_unmatched=unmatched,
        errors=errors,
    )


def run_worker(
    job: dict,
    worker_index: int,
    on_shard: Callable[[int], None] | None = None,
) -> int:
    """Score every pending shard of this worker; returns the number of samples scored."""
    config = ScorerConfig.from_dict(job["scorer"])
    capabilities = [Capability(cap_id, keyword) for cap_id, keyword in job["capabilities"]]
    store = ScoreStore(job["store_root"], job["fingerprint"]).open()
    samples = read_samples(Path(job["samples"]))
    shards = [Shard(**s) for s in job["shards"]]
    mine = [s for k, s in enumerate(shards) if k % job["workers"] == worker_index]
    engine = None
    done_samples = 0
    for shard in mine:
        if store.shard_path(shard.id).exists():
            continue
        engine = engine or build_engine(config)
        chunk = samples[shard.start : shard.stop]
        store.write_shard(shard.id, score_chunk(engine, chunk, capabilities))
        done_samples += len(chunk)
        if on_shard:
            on_shard(len(chunk))
    return done_samples


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m mmssr_plugin.scoring.worker JOB.json WORKER_INDEX", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    run_worker(job, int(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
