"""Grapheme-to-phoneme conversion on CMUdict: an LSTM encoder-decoder with and without attention.

Training uses teacher forcing and token-level cross-entropy; the numbers that matter are word and phoneme error
rates of decoded outputs, on validation words after every epoch (greedy) and on test words at the end (greedy
and every beam size in `beams`). A word counts as correct if it matches any of its pronunciations.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch
from torch.nn import functional as F

from ..analysis.metrics import error_rates
from ..data.cmudict import PAD, G2PData, expand_pairs, load_g2p, make_batches, pad_sequences
from ..models.seq2seq import Seq2Seq, trim
from ..run import RunOutput
from ..train import RunContext, adam, epoch_seed, fit

# Batches are formed within windows of this many batches after shuffling, each window sorted by length, so a
# batch holds words of similar length: the decoder then runs over far less padding (about half the steps).
BUCKET_WINDOW = 16
# Decoder rows (words x beam) per decoding batch: large batches amortise the per-step overhead of decoding.
DECODE_ROWS = 4096
N_EXAMPLES = 4


def build(p: dict, data: G2PData | None = None) -> Seq2Seq:
    """`data` gives the vocabularies; without it they are read from CMUdict (they do not depend on the limits)."""
    data = data or load_g2p(p.get("train_limit"), p.get("eval_limit"))
    return Seq2Seq(data.graphemes, data.phonemes, emb=p["emb"], enc_hidden=p["enc_hidden"],
                   dec_hidden=p["dec_hidden"], attention=p["attention"], dropout=p["dropout"])


def train_batches(ctx: RunContext, pairs: Sequence[tuple[str, tuple[str, ...]]], data: G2PData, stage: str):
    """batches(epoch) for `fit`: length-bucketed, reshuffled per epoch from the run seed only."""
    bs = ctx.params["batch_size"]

    def batches(epoch: int):
        gen = torch.Generator().manual_seed(epoch_seed(ctx.seed, stage, epoch))
        order = torch.randperm(len(pairs), generator=gen).tolist()
        groups = []
        window = bs * BUCKET_WINDOW
        for start in range(0, len(order), window):
            part = sorted(order[start:start + window], key=lambda i: (len(pairs[i][1]), len(pairs[i][0])))
            groups += [part[j:j + bs] for j in range(0, len(part), bs)]
        # Shuffle the batches too, or every window would run from short to long words.
        for k in torch.randperm(len(groups), generator=gen).tolist():
            (batch,) = make_batches([pairs[i] for i in groups[k]], data.graphemes, data.phonemes, len(groups[k]))
            yield batch.to(ctx.device)
    return batches, -(-len(pairs) // bs)


def final_anneal(opt: torch.optim.Optimizer, total_steps: int, start: float,
                 floor: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant rate, then a linear decay to `floor` x rate over the last (1 - start) of the steps (the family's
    anneal_start and anneal_floor)."""
    begin = start * total_steps

    def factor(step: int) -> float:
        if step <= begin:
            return 1.0
        return max(floor, 1.0 - (1.0 - floor) * (step - begin) / max(total_steps - begin, 1))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def token_loss(model: Seq2Seq, batch) -> torch.Tensor:
    logits = model(batch.src, batch.src_len, batch.tgt_in)
    return F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(), ignore_index=PAD)


def decode(model: Seq2Seq, words: Sequence[str], data: G2PData, device, max_len: int,
           beam: int | None = None) -> list[list[str]]:
    """Phoneme sequences for `words`: greedy (beam None) or beam search, batched.

    Words are decoded sorted by length so a batch stops as soon as its similar-length words are done. Greedy and
    beam 1 see identical batches, which is what makes their outputs comparable token for token."""
    order = sorted(range(len(words)), key=lambda i: (len(words[i]), words[i]))
    per_batch = max(1, DECODE_ROWS // (beam or 1))
    out: list[list[str]] = [[] for _ in words]
    model.eval()
    for start in range(0, len(order), per_batch):
        idx = order[start:start + per_batch]
        src, src_len = pad_sequences([data.graphemes.encode(list(words[i])) for i in idx])
        src, src_len = src.to(device), src_len.to(device)
        if beam is None:
            hyps = trim(model.greedy_decode(src, src_len, max_len=max_len)[0])
        else:
            hyps = model.beam_search(src, src_len, beam_size=beam, max_len=max_len)[0]
        for i, h in zip(idx, hyps):
            out[i] = data.phonemes.decode(h)
    return out


def score(model: Seq2Seq, entries, data: G2PData, device, max_len: int, beam: int | None = None) -> dict:
    """Error rates of the decoded words, and the decoded words themselves under "hyps"."""
    hyps = decode(model, [w for w, _ in entries], data, device, max_len, beam)
    return {**error_rates(hyps, [prons for _, prons in entries]), "hyps": hyps}


def pick_examples(entries, n: int = N_EXAMPLES) -> list:
    """Test words of middling length, in the split's hash order: random-looking but the same on every run, and
    short enough for an attention heatmap to stay legible."""
    chosen = [e for e in entries if 6 <= len(e[0]) <= 10 and e[0].isalpha()][:n]
    return chosen or list(entries[:n])


@torch.inference_mode()
def examples(model: Seq2Seq, entries, data: G2PData, device, max_len: int, beams: Sequence[int]) -> list[dict]:
    words = [w for w, _ in entries]
    src, src_len = pad_sequences([data.graphemes.encode(list(w)) for w in words])
    src, src_len = src.to(device), src_len.to(device)
    ids, attn = model.greedy_decode(src, src_len, max_len=max_len)
    greedy = [data.phonemes.decode(h) for h in trim(ids)]
    by_beam = {k: decode(model, words, data, device, max_len, beam=k) for k in beams}
    out = []
    for b, (word, prons) in enumerate(entries):
        item = {"word": word, "references": [" ".join(p) for p in prons], "greedy": " ".join(greedy[b]),
                "beams": {str(k): " ".join(by_beam[k][b]) for k in beams},
                "greedy_correct": tuple(greedy[b]) in {tuple(p) for p in prons}}
        if attn is not None:
            # Rows: each output phoneme and the final </s>; columns: the word's letters.
            rows = len(greedy[b]) + 1
            item["attention"] = [[round(float(v), 4) for v in r] for r in attn[b, :rows, :len(word)].cpu()]
            item["attention_rows"] = greedy[b] + ["</s>"]
        out.append(item)
    return out


def run(ctx: RunContext) -> RunOutput:
    p = ctx.params
    data = load_g2p(p.get("train_limit"), p.get("eval_limit"))
    pairs = expand_pairs(data.train)
    model = build(p, data).to(ctx.device)
    batches, steps = train_batches(ctx, pairs, data, "train")
    opt = adam(model.parameters(), p["lr"])
    sched = final_anneal(opt, steps * p["epochs"], p["anneal_start"], p["anneal_floor"])

    def evaluate(m: Seq2Seq) -> dict:
        r = score(m, data.val, data, ctx.device, p["max_len"])
        return {"val_wer": r["wer"], "val_per": r["per"], "val_ned": r["ned"]}

    history = fit(model, opt, ctx=ctx, epochs=p["epochs"], batches=batches, loss_fn=token_loss,
                  evaluate=evaluate, steps_per_epoch=steps, scheduler=sched)

    metrics = {"params": sum(t.numel() for t in model.parameters()), "n_train_words": len(data.train),
               "n_train_pairs": len(pairs), "n_val_words": len(data.val), "n_test_words": len(data.test),
               "n_graphemes": len(data.graphemes), "n_phonemes": len(data.phonemes)}
    timing = {}  # wall-clock numbers go to extras.json: metrics.json must be identical across reruns of a seed
    model.eval()
    # Final decoding in float32 even on CUDA: beam rankings compare summed log-probabilities closely.
    with torch.inference_mode():
        for name, beam in [("greedy", None)] + [(f"beam{k}", k) for k in p["beams"]]:
            t0 = time.perf_counter()
            r = score(model, data.test, data, ctx.device, p["max_len"], beam)
            timing[f"test_seconds_{name}"] = round(time.perf_counter() - t0, 3)
            for key in ("wer", "per", "ned"):
                metrics[f"test_{key}_{name}"] = r[key]
            if beam is None:
                predictions = {"split": "test", "kind": "phonemes", "keys": [w for w, _ in data.test],
                               "values": [" ".join(h) for h in r["hyps"]]}
            ctx.log(f"[{ctx.run_id}] test {name}: wer={r['wer']:.4f} "
                    f"per={r['per']:.4f} ({timing[f'test_seconds_{name}']:.1f}s)")
        final_val = dict(history[-1]) if history else evaluate(model)
    for key in ("val_wer", "val_per", "val_ned"):
        metrics[key] = final_val[key]
    extras = {"examples": examples(model, pick_examples(data.test), data, ctx.device, p["max_len"], p["beams"]),
              "attention": bool(p["attention"]), "timing": timing}
    return RunOutput(metrics=metrics, model=model, extras=extras, predictions=predictions)
