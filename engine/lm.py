"""Word n-gram language models with interpolated Kneser-Ney smoothing, written as ARPA.

Why hand-written: the standard builder (KenLM's ``lmplz``) is a C++ program
that no PyPI package ships, and the Python packages that do n-grams (NLTK)
neither write ARPA nor scale. The ARPA file this module writes is read by
KenLM inside flashlight-text's decoder (see :mod:`engine.beam`), so only the
estimation lives here, about a hundred lines that follow Chen & Goodman
(1998), "An empirical study of smoothing techniques", interpolated KN with
one discount per order, ``D = n1 / (n1 + 2 n2)``.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _discount(counts: Counter) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.5


def build_arpa(sentences: Iterable[str], path: Path, *, order: int = 3) -> dict:
    """Estimate an interpolated Kneser-Ney n-gram model and write it as ARPA (atomically).

    Args:
        sentences: normalised text, one sentence per item.
        path: the ``.arpa`` file to write.
        order: highest n-gram order (>= 2).

    Returns:
        A summary: ``order``, ``vocabulary`` size and n-gram counts per order.

    Raises:
        ValueError: with no words at all, or an order below 2.
    """
    if order < 2:
        raise ValueError(f"order must be at least 2, got {order}")
    # counts[n]: raw counts for the highest order and for lower-order n-grams that start at <s>
    # (they have no left context); for the other lower-order n-grams, continuation counts
    # (the number of distinct words seen before them), as Kneser-Ney prescribes.
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = [BOS] + sentence.split() + [EOS]
        if len(words) == 2:
            continue
        for m in range(2, min(order, len(words) + 1)):
            counts[m][tuple(words[:m])] += 1
        for i in range(len(words) - order + 1):
            counts[order][tuple(words[i : i + order])] += 1
    if not counts[order] and not counts[2]:
        raise ValueError("no words to build a language model from")
    for n in range(order, 1, -1):
        for gram in counts[n]:
            counts[n - 1][gram[1:]] += 1
    vocab = sorted({g[0] for g in counts[1]} | {EOS})
    discounts = [0.0] + [_discount(counts[n]) for n in range(1, order + 1)]

    probs: list[dict[tuple, float]] = [{} for _ in range(order + 1)]
    backoff: list[dict[tuple, float]] = [{} for _ in range(order + 1)]
    total1 = sum(counts[1].values())
    d1 = discounts[1]
    uniform = 1.0 / (len(vocab) + 1)  # +1 for <unk>
    lam1 = d1 * len(counts[1]) / total1
    for (w,), c in counts[1].items():
        probs[1][(w,)] = max(c - d1, 0) / total1 + lam1 * uniform
    probs[1][(UNK,)] = lam1 * uniform
    for n in range(2, order + 1):
        ctx_total: dict[tuple, int] = defaultdict(int)
        ctx_types: dict[tuple, int] = defaultdict(int)
        for gram, c in counts[n].items():
            ctx_total[gram[:-1]] += c
            ctx_types[gram[:-1]] += 1
        d = discounts[n]
        for ctx, total in ctx_total.items():
            backoff[n - 1][ctx] = d * ctx_types[ctx] / total
        for gram, c in counts[n].items():
            lower = _lower_prob(probs, backoff, gram[1:])
            probs[n][gram] = max(c - d, 0) / ctx_total[gram[:-1]] + backoff[n - 1][gram[:-1]] * lower
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8") as fh:
        sizes = [len(probs[1]) + 1] + [len(probs[n]) for n in range(2, order + 1)]
        fh.write("\n\\data\\\n")
        for n, size in enumerate(sizes, 1):
            fh.write(f"ngram {n}={size}\n")
        for n in range(1, order + 1):
            fh.write(f"\n\\{n}-grams:\n")
            if n == 1:
                fh.write(f"-99\t{BOS}\t{math.log10(backoff[1].get((BOS,), 1.0)):.6f}\n")
            for gram, p in sorted(probs[n].items()):
                line = f"{math.log10(p):.6f}\t{' '.join(gram)}"
                if n < order and gram in backoff[n]:
                    line += f"\t{math.log10(backoff[n][gram]):.6f}"
                fh.write(line + "\n")
        fh.write("\n\\end\\\n")
    os.replace(tmp, path)
    return {"order": order, "vocabulary": len(vocab), "ngrams": sizes}


def _lower_prob(probs: list[dict], backoff: list[dict], gram: tuple) -> float:
    """Probability of ``gram``'s last word given its (shorter) history, backing off as ARPA does."""
    n = len(gram)
    if gram in probs[n]:
        return probs[n][gram]
    if n == 1:
        return probs[1][(UNK,)]
    return backoff[n - 1].get(gram[:-1], 1.0) * _lower_prob(probs, backoff, gram[1:])
