import re

import pytest
import torch

from pipeline.data.cmudict import (BOS, EOS, PAD, UNK, Vocab, expand_pairs, load_g2p, load_pronunciations,
                                   make_batches, pad_sequences, split_words)


@pytest.fixture(scope="module")
def prons():
    return load_pronunciations()


def test_entries_are_clean(prons):
    assert len(prons) > 100_000
    word_re = re.compile(r"^[a-z']+$")
    for word, ps in prons.items():
        assert word_re.match(word) and re.search("[a-z]", word)
        assert ps and len(set(ps)) == len(ps)  # deduplicated after stress removal
        for p in ps:
            assert all(ph.isalpha() and ph.isupper() for ph in p)  # no stress digits left
    assert "a.d." not in prons and "'bout" in prons


def test_tomato_has_two_pronunciations_without_stress(prons):
    assert prons["tomato"] == [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")]


def test_returned_dict_is_a_fresh_copy(prons):
    prons["tomato"].append(("X",))
    assert len(load_pronunciations()["tomato"]) == 2
    prons["tomato"].pop()


def test_split_is_deterministic_disjoint_and_about_90_5_5(prons):
    words = list(prons)
    splits = split_words(words)
    assert splits == split_words(reversed(words))
    sets = {k: set(v) for k, v in splits.items()}
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    assert set().union(*sets.values()) == set(words)
    for name, frac in [("train", 0.90), ("val", 0.05), ("test", 0.05)]:
        assert abs(len(splits[name]) / len(words) - frac) < 0.01


def test_a_words_split_does_not_depend_on_the_other_words(prons):
    words = sorted(prons)
    full = {w: name for name, ws in split_words(words).items() for w in ws}
    small = {w: name for name, ws in split_words(words[::97] + ["zzzqx"]).items() for w in ws}
    assert all(full[w] == small[w] for w in words[::97])


def test_vocab_ids_and_round_trip():
    v = Vocab.from_sequences(["cab", "bad"])
    assert v.itos == ["<pad>", "<s>", "</s>", "<unk>", "a", "b", "c", "d"]
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert Vocab("dcba").itos == v.itos  # order of appearance does not matter
    ids = v.encode("cab", add_bos=True, add_eos=True)
    assert ids == [BOS, 6, 4, 5, EOS]
    assert v.decode(ids) == ["c", "a", "b"]
    assert v.decode(torch.tensor([6, EOS, 4, PAD])) == ["c"]  # stops at </s>
    assert v.encode("z") == [UNK] and v.decode([UNK]) == ["<unk>"]


def test_pad_sequences():
    tokens, lengths = pad_sequences([[5, 6, 7], [8]])
    assert tokens.dtype == torch.long and tokens.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert lengths.tolist() == [3, 1]


def test_make_batches_teacher_forcing_convention():
    src_v, tgt_v = Vocab("abc"), Vocab(["X", "Y"])
    pairs = expand_pairs([("ab", [("X",), ("X", "Y")]), ("cab", [("Y", "Y", "X")])])
    assert len(pairs) == 3
    (b,) = make_batches(pairs, src_v, tgt_v, batch_size=8)
    assert b.src_len.tolist() == [2, 2, 3] and b.words == ["ab", "ab", "cab"]
    assert (b.tgt_in[:, 0] == BOS).all()
    lengths = torch.tensor([len(p) for _, p in pairs])
    assert (b.tgt_out.gather(1, lengths[:, None])[:, 0] == EOS).all()
    shifted = b.tgt_out[:, :-1]
    assert torch.equal(b.tgt_in[:, 1:][shifted != EOS], shifted[shifted != EOS])
    shuffled = make_batches(pairs, src_v, tgt_v, batch_size=2, shuffle=True, seed=3)
    assert [len(x.words) for x in shuffled] == [2, 1]
    assert sorted(w for x in shuffled for w in x.words) == ["ab", "ab", "cab"]


def test_load_g2p_limits_and_vocabs(prons):
    data = load_g2p(limit_train=50, limit_eval=10)
    assert (len(data.train), len(data.val), len(data.test)) == (50, 10, 10)
    assert data.train == load_g2p(limit_train=50, limit_eval=10).train
    assert data.train[:20] == load_g2p(limit_train=20, limit_eval=1).train  # limits are prefixes
    assert all(prons[w] == ps for w, ps in data.train + data.val + data.test)
    assert len(data.graphemes) == 4 + 27  # a-z and the apostrophe
    assert len(data.phonemes) == 4 + 39  # ARPAbet without stress
