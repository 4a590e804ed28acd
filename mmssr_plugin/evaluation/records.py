"""Per-scorer evaluation records in the plugin's cache, keyed by the scorer's identity.

``eval-scorer`` leaves ``<cache_dir>/evaluations/<identity key>.json`` for each scorer it
evaluated (the last evaluation wins); the selection stage looks the chosen scorer up there to warn
before scoring with a scorer that mostly gave no digit answer, and to link its evaluation page
from the selection report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmssr_plugin.utils.files import atomic_write_json
from mmssr_plugin.utils.hashing import canonical_hash

if TYPE_CHECKING:
    from mmssr_plugin.scoring.config import ScorerConfig

logger = logging.getLogger(__name__)

RECORDS_DIR = "evaluations"
RECORD_FORMAT = "mmssr-scorer-eval-record/1"
# The stage warns when more than this share of held-out (sample, capability) pairs had no digit.
NON_DIGIT_WARNING_SHARE = 0.5
_OVERALL_KEYS = ("samples", "answered", "non_digit", "non_digit_share", "agreement", "mae", "spearman")


def record_path(cache_dir: str | Path, identity: dict[str, Any]) -> Path:
    """Where the evaluation record of the scorer with this engine identity lives."""
    return Path(cache_dir) / RECORDS_DIR / f"{canonical_hash(identity)}.json"


def write_records(
    cache_dir: str | Path, document: dict[str, Any], html_path: Path, json_path: Path
) -> list[Path]:
    """Write (or replace) one record per evaluated scorer; returns their paths."""
    held_out = document["held_out"]
    paths = []
    for scorer in document["scorers"]:
        path = record_path(cache_dir, scorer["identity"])
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {
            "format": RECORD_FORMAT,
            "name": scorer["name"],
            "identity": scorer["identity"],
            "page": str(Path(html_path).resolve()),
            "json": str(Path(json_path).resolve()),
            "held_out": {key: held_out.get(key) for key in ("kind", "dataset", "samples", "val_split")},
            "min_digit_mass": document["min_digit_mass"],
            "overall": {key: scorer["overall"][key] for key in _OVERALL_KEYS},
        }, indent=1, sort_keys=True)
        paths.append(path)
    return paths


def find_record(cache_dir: str | Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The last evaluation record of this scorer identity, or None (an unreadable one is logged)."""
    path = record_path(cache_dir, identity)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("scorer evaluation record %s is unreadable (%s); ignored", path, err)
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        logger.warning("scorer evaluation record %s has an unknown format; ignored", path)
        return None
    return record


def find_scorer_evaluation(cache_dir: str | Path, scorer: ScorerConfig) -> dict[str, Any] | None:
    """The last evaluation record of the scorer a ``ScorerConfig`` describes (no model is loaded)."""
    from mmssr_plugin.engines import engine_identity

    return find_record(cache_dir, engine_identity(scorer))


def low_digit_warning(record: dict[str, Any] | None) -> str | None:
    """One warning line when the recorded evaluation found no digit answer on most pairs."""
    if not record:
        return None
    overall = record["overall"]
    share = overall.get("non_digit_share")
    if share is None or share <= NON_DIGIT_WARNING_SHARE:
        return None
    return (
        f"the last evaluation of this scorer ({record['name']}) found no digit answer (digit mass "
        f"below {record['min_digit_mass']:g}) on {100 * share:.0f}% of {overall['samples']} held-out "
        f"sample-capability pairs; most of its scores will be missing (see {record['page']})"
    )


def report_link(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the selection report shows of a scorer's evaluation: its page and headline figures."""
    if not record:
        return None
    return {"name": record["name"], "page": record["page"], "json": record["json"],
            "held_out": record["held_out"], "overall": record["overall"]}
