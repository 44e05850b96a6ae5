"""Word and phoneme error rates for G2P with several acceptable pronunciations per word."""
from __future__ import annotations

from typing import Sequence


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (unit-cost insert, delete, substitute) between two sequences."""
    if len(a) < len(b):
        a, b = b, a  # keep the row as short as possible
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(hyps: Sequence[Sequence], refs_list: Sequence[Sequence[Sequence]]) -> dict:
    """WER: fraction of words whose hypothesis matches none of its references.
    PER: sum of each word's edit distance to its closest reference over the summed lengths of those
    closest references (ties go to the first listed). NED: the mean over words of that distance divided by
    that reference's length, the per-word normalised edit distance some courses report as "error rate"
    (short words weigh as much as long ones, unlike PER). All are fractions, not percentages; PER and NED can
    exceed 1 only if hypotheses insert more phonemes than the references hold."""
    if len(hyps) != len(refs_list):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs_list)} reference lists")
    if not hyps:
        raise ValueError("no words to score")
    wrong = errors = ref_len = 0
    normalised = 0.0
    for hyp, refs in zip(hyps, refs_list):
        if not refs:
            raise ValueError("every word needs at least one reference")
        hyp = list(hyp)
        dist, length = min(((edit_distance(hyp, list(r)), len(r)) for r in refs), key=lambda t: t[0])
        wrong += dist != 0
        errors += dist
        ref_len += length
        normalised += dist / max(length, 1)
    return {"wer": wrong / len(hyps), "per": errors / max(ref_len, 1), "ned": normalised / len(hyps),
            "n_words": len(hyps),
            "n_phonemes": ref_len}
