import copy

import pytest
import torch
import torch.nn.functional as F

from pipeline.data import cmudict
from pipeline.data.cmudict import pad_sequences
from pipeline.models.seq2seq import BOS, EOS, PAD, Seq2Seq, trim

N_SYMBOLS = 8  # real symbols, ids 4 .. 11, after the four specials
V = 4 + N_SYMBOLS


def reverse_batch(gen, batch_size):
    """Toy task: output the input reversed. Variable lengths exercise packing and masking."""
    lengths = torch.randint(3, 8, (batch_size,), generator=gen).tolist()
    seqs = [torch.randint(4, V, (n,), generator=gen).tolist() for n in lengths]
    src, src_len = pad_sequences(seqs)
    tgt_in, _ = pad_sequences([[BOS] + s[::-1] for s in seqs])
    tgt_out, _ = pad_sequences([s[::-1] + [EOS] for s in seqs])
    return src, src_len, tgt_in, tgt_out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # These models are tiny: a second intra-op thread buys nothing, and on a shared machine the
    # threads' spin-waiting made training ~10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(one_thread):
    """One short training run; a copy after 15 steps serves as the uncertain 'few steps' model."""
    torch.manual_seed(0)
    model = Seq2Seq(V, V, emb=32, enc_hidden=64, dec_hidden=64, attention=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    early = None
    for step in range(100):
        src, src_len, tgt_in, tgt_out = reverse_batch(gen, 64)
        logits = model(src, src_len, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 14:
            early = copy.deepcopy(model).eval()
    return early, model.eval()


@pytest.fixture(scope="module")
def test_batch():
    return reverse_batch(torch.Generator().manual_seed(99), 128)


def test_special_ids_agree_with_vocab():
    assert (PAD, BOS, EOS) == (cmudict.PAD, cmudict.BOS, cmudict.EOS)


def test_shapes_with_and_without_attention(test_batch):
    src, src_len, tgt_in, _ = test_batch
    for attention in (True, False):
        model = Seq2Seq(V, V + 3, emb=8, enc_hidden=8, dec_hidden=12, attention=attention).eval()
        assert model(src, src_len, tgt_in).shape == (src.size(0), tgt_in.size(1), V + 3)
        ids, attn = model.greedy_decode(src, src_len, max_len=5)
        assert ids.shape[0] == src.size(0) and ids.shape[1] <= 5
        hyps, battn = model.beam_search(src[:4], src_len[:4], beam_size=3, max_len=5)
        assert len(hyps) == 4
        if attention:
            assert attn.shape == (src.size(0), ids.size(1), src.size(1))
            assert [a.shape for a in battn] == [(len(h), n) for h, n in zip(hyps, src_len[:4].tolist())]
        else:
            assert attn is None and battn is None


def test_trained_model_beats_chance(models, test_batch):
    _, model = models
    src, src_len, _, tgt_out = test_batch
    ids, _ = model.greedy_decode(src, src_len, max_len=12)
    pred = torch.full_like(tgt_out, -1)
    n = min(ids.size(1), tgt_out.size(1))
    pred[:, :n] = ids[:, :n]
    mask = tgt_out != PAD
    accuracy = ((pred == tgt_out) & mask).sum().item() / mask.sum().item()
    assert accuracy > 0.8  # chance is 1 / 8 per token


def test_attention_is_a_distribution_over_real_positions(models, test_batch):
    _, model = models
    src, src_len, _, _ = test_batch
    _, attn = model.greedy_decode(src, src_len, max_len=10)
    pad = torch.arange(src.size(1))[None, :] >= src_len[:, None]
    assert torch.allclose(attn.sum(-1), torch.ones(attn.shape[:2]), atol=1e-5)
    assert (attn.masked_select(pad[:, None, :].expand_as(attn)) == 0).all()


def test_padding_does_not_change_results(models, test_batch):
    _, model = models
    src, src_len, tgt_in, _ = test_batch
    batched = model(src, src_len, tgt_in)
    ids, _ = model.greedy_decode(src, src_len, max_len=12)
    for i in range(0, 128, 37):
        n = int(src_len[i])
        alone = model(src[i:i + 1, :n], src_len[i:i + 1], tgt_in[i:i + 1])
        assert torch.allclose(alone, batched[i:i + 1], atol=1e-5)
        ids_alone, _ = model.greedy_decode(src[i:i + 1, :n], src_len[i:i + 1], max_len=12)
        assert trim(ids_alone) == trim(ids[i:i + 1])


@pytest.mark.parametrize("which", [0, 1])
def test_beam_1_is_exactly_greedy(models, test_batch, which):
    model = models[which]
    src, src_len, _, _ = test_batch
    ids, attn = model.greedy_decode(src, src_len, max_len=15)
    hyps, battn = model.beam_search(src, src_len, beam_size=1, max_len=15)
    assert hyps == trim(ids)
    for b, h in enumerate(hyps):
        assert torch.equal(battn[b], attn[b, :len(h), :int(src_len[b])])


def _logprob(model, src, src_len, hyps):
    tgt_out, _ = pad_sequences([h + [EOS] for h in hyps])
    return model.sequence_logprob(src, src_len, tgt_out)


@pytest.mark.parametrize("which", [0, 1])
def test_beam_5_never_scores_below_greedy(models, test_batch, which):
    model = models[which]
    src, src_len, _, _ = test_batch
    ids, _ = model.greedy_decode(src, src_len, max_len=20)
    assert (ids == EOS).any(1).all()  # every greedy output is finished, so both scores include </s>
    greedy = _logprob(model, src, src_len, trim(ids))
    beam5, _ = model.beam_search(src, src_len, beam_size=5, max_len=20)
    beam = _logprob(model, src, src_len, beam5)
    assert (beam >= greedy - 1e-4).all()
    if which == 0:  # the barely trained model is uncertain enough for the search to matter
        assert (beam > greedy + 1e-3).any()


def test_length_penalty_runs(models, test_batch):
    _, model = models
    src, src_len, _, _ = test_batch
    hyps, _ = model.beam_search(src[:8], src_len[:8], beam_size=4, max_len=12, length_penalty=1.0)
    assert len(hyps) == 8 and all(PAD not in h and EOS not in h and BOS not in h for h in hyps)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(models, test_batch):
    _, model = models
    src, src_len, _, _ = test_batch
    gpu = copy.deepcopy(model).cuda()
    cpu_hyps, _ = model.beam_search(src, src_len, beam_size=5, max_len=12)
    gpu_hyps, gpu_attn = gpu.beam_search(src.cuda(), src_len.cuda(), beam_size=5, max_len=12)
    agree = sum(a == b for a, b in zip(cpu_hyps, gpu_hyps)) / len(cpu_hyps)
    assert agree > 0.95  # kernels differ in rounding, so near-ties may flip
    ids, attn = gpu.greedy_decode(src.cuda(), src_len.cuda(), max_len=12)
    assert ids.is_cuda and attn.is_cuda


def test_encoder_equals_a_packed_bidirectional_lstm_and_loads_its_weights():
    """The encoder runs its two directions over the padded batch (oneDNN's fused layer on a CPU) instead of packing;
    padding must still never reach either direction, and weights saved from the packed form must load."""
    torch.manual_seed(3)
    model = Seq2Seq(V, V, emb=16, enc_hidden=24, dec_hidden=32, attention=True)
    packed = torch.nn.LSTM(16, 24, batch_first=True, bidirectional=True)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.fwd.")
           and not k.startswith("encoder.bwd.")}
    old.update({f"encoder.rnn.{k}": v for k, v in packed.state_dict().items()})
    model.load_state_dict(old)  # the layout of checkpoints written before the split
    src, src_len, _, _ = reverse_batch(torch.Generator().manual_seed(5), 32)
    assert len(set(src_len.tolist())) > 1 and src_len.max() == src.size(1)
    with torch.no_grad():
        out, (h0, c0) = model.encoder(src, src_len)
        x = model.encoder.embed(src)
        ref, (h, _) = packed(torch.nn.utils.rnn.pack_padded_sequence(x, src_len, batch_first=True,
                                                                      enforce_sorted=False))
        ref, _ = torch.nn.utils.rnn.pad_packed_sequence(ref, batch_first=True, total_length=src.size(1))
        ref_h0, ref_c0 = model.encoder.bridge(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(h0, torch.tanh(ref_h0))
    torch.testing.assert_close(c0, ref_c0)


def test_encoder_runs_the_fused_lstm_layer_where_a_plain_lstm_does():
    def ops(fn):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn()
        return {e.key for e in prof.key_averages()}
    plain = torch.nn.LSTM(8, 8, batch_first=True)
    if "aten::mkldnn_rnn_layer" not in ops(lambda: plain(torch.randn(2, 3, 8))):
        pytest.skip("this build runs nn.LSTM step by step")
    model = Seq2Seq(V, V, emb=8, enc_hidden=8, dec_hidden=8)
    src, src_len, _, _ = reverse_batch(torch.Generator().manual_seed(5), 8)
    seen = ops(lambda: model.encoder(src, src_len))
    assert "aten::mkldnn_rnn_layer" in seen and "aten::_pack_padded_sequence" not in seen, sorted(seen)
