"""The scorer's user text: the conversation as the authors formatted it, then one query.

Every string here reproduces the authors' pipeline byte for byte, quirks included, because the
released scorers were trained on exactly these strings.
"""

from __future__ import annotations

from typing import Sequence

from mmssr_plugin.core.taxonomy import STYLE_QUERY, Capability

_HINT_PREFIXES = ("<image>\nHint:", "Hint:")
# str.strip with this argument removes a *set of characters* from both ends, not a prefix:
# "is it parked next to the station" becomes "parked next to the sta". The released scorers saw it.
_QUESTION_STRIP_CHARS = "Question: "


def format_convs(turns: Sequence[str]) -> str:
    """Format alternating human/assistant texts the way the authors' scorer prompts do.

    Args:
        turns: turn texts in order, human first (even positions human, odd positions assistant).
            An odd length means the last human turn has no answer.

    Returns:
        One ``Question: ... Answer: ...`` piece per human turn, joined with newlines.
    """
    pieces = []
    for position in range(0, len(turns), 2):
        human = turns[position]
        if human.startswith(_HINT_PREFIXES):
            piece = human
        else:
            piece = "Question: " + human.strip(_QUESTION_STRIP_CHARS)
        piece += " Answer: "
        if position + 1 < len(turns):
            piece += turns[position + 1]
        pieces.append(piece)
    return "\n".join(pieces)


def scorer_user_text(turns: Sequence[str], query: str) -> str:
    """The whole user message sent to the scorer: the formatted conversation, a newline, the query."""
    return format_convs(turns) + "\n" + query


def all_queries(capabilities: Sequence[Capability], with_style: bool = True) -> list[str]:
    """The capability queries in order, then (optionally) the style query."""
    queries = [cap.query for cap in capabilities]
    if with_style:
        queries.append(STYLE_QUERY)
    return queries
