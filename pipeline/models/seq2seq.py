"""LSTM encoder-decoder with optional bilinear ("general", Luong) attention for G2P.

Token ids follow pipeline.data.cmudict.Vocab: <pad>=0, <s>=1, </s>=2.
Training: logits = model(src, src_len, tgt_in) with tgt_in = <s> + y and target tgt_out = y + </s>;
loss = cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD).
"""
from __future__ import annotations

import torch
from torch import nn

PAD, BOS, EOS = 0, 1, 2


def _size(vocab) -> int:
    return vocab if isinstance(vocab, int) else len(vocab)


def source_mask(src_len: torch.Tensor, max_len: int, device) -> torch.Tensor:
    """[B, S] True at real (non-padding) source positions."""
    return torch.arange(max_len, device=device)[None, :] < src_len.to(device)[:, None]


class Encoder(nn.Module):
    """A bidirectional LSTM over the letters, run as two one-directional LSTMs over the padded batch.

    The backward LSTM reads each word reversed within its own length, so padding never reaches either direction's
    state: the result equals a packed bidirectional LSTM's. On a CPU a packed sequence runs PyTorch's step-by-step
    LSTM, while a padded one runs oneDNN's fused layer, which made the whole training step 2x faster."""

    def __init__(self, vocab_size: int, emb: int, hidden: int, dec_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=PAD)
        # Created in this order so that a seed draws the same initial weights as nn.LSTM(bidirectional=True) did.
        self.fwd = nn.LSTM(emb, hidden, batch_first=True)
        self.bwd = nn.LSTM(emb, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        # Final forward + backward states -> decoder (h0, c0); the sizes differ, hence a learned bridge.
        self.bridge = nn.Linear(2 * hidden, 2 * dec_hidden)
        self._register_load_state_dict_pre_hook(_from_bidirectional)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor):
        x = self.drop(self.embed(src))
        steps = torch.arange(src.size(1), device=src.device)[None, :]
        length = src_len.to(src.device)[:, None]
        real = steps < length
        # Position t of a word of length L holds letter L-1-t; padding stays where it is. Its own inverse.
        reverse = torch.where(real, length - 1 - steps, steps)
        forward_out = self.fwd(x)[0]
        backward_out = _take(self.bwd(_take(x, reverse))[0], reverse)
        last = (length - 1)[:, :, None].expand(-1, 1, forward_out.size(2))
        h_forward = forward_out.gather(1, last)[:, 0]   # after the last letter
        h_backward = backward_out[:, 0]                 # after reading back to the first letter
        out = torch.cat([forward_out, backward_out], dim=-1) * real[..., None]
        h0, c0 = self.bridge(torch.cat([h_forward, h_backward], dim=-1)).chunk(2, dim=-1)
        return out, (torch.tanh(h0).contiguous(), c0.contiguous())


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, T, D] reordered along T by index [B, T]."""
    return x.gather(1, index[..., None].expand(-1, -1, x.size(2)))


def _from_bidirectional(state_dict, prefix, *_):
    """Let a checkpoint written when the encoder was one nn.LSTM(bidirectional=True) load (same weights)."""
    for key in [k for k in state_dict if k.startswith(prefix + "rnn.")]:
        name = key[len(prefix + "rnn."):]
        target = "bwd." + name.removesuffix("_reverse") if name.endswith("_reverse") else "fwd." + name
        state_dict[prefix + target] = state_dict.pop(key)


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, emb: int, enc_dim: int, hidden: int, attention: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.attention = attention
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=PAD)
        self.rnn = nn.LSTM(emb, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.attn = nn.Linear(hidden, enc_dim, bias=False) if attention else None
        self.combine = nn.Linear(hidden + (enc_dim if attention else 0), hidden)
        self.proj = nn.Linear(hidden, vocab_size)

    def forward(self, y_in: torch.Tensor, state, enc_out: torch.Tensor, mask: torch.Tensor):
        """y_in [B, T] -> logits [B, T, V], new state, attention [B, T, S] or None.
        Without input feeding the LSTM states do not depend on attention, so all T steps run at once
        in training; decoding calls this with T = 1."""
        q, state = self.rnn(self.drop(self.embed(y_in)), state)
        alpha = None
        feat = q
        if self.attention:
            scores = torch.bmm(self.attn(q), enc_out.transpose(1, 2))  # (W q) . h_enc -> [B, T, S]
            alpha = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
            feat = torch.cat([q, torch.bmm(alpha, enc_out)], dim=-1)
        out = torch.tanh(self.combine(self.drop(feat)))
        return self.proj(self.drop(out)), state, alpha


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, emb: int = 64, enc_hidden: int = 128, dec_hidden: int = 256,
                 attention: bool = True, dropout: float = 0.0):
        super().__init__()
        self.tgt_size = _size(tgt_vocab)
        self.encoder = Encoder(_size(src_vocab), emb, enc_hidden, dec_hidden, dropout)
        self.decoder = Decoder(self.tgt_size, emb, 2 * enc_hidden, dec_hidden, attention, dropout)

    def _encode(self, src, src_len):
        enc_out, (h, c) = self.encoder(src, src_len)
        return enc_out, (h[None], c[None]), source_mask(src_len, src.size(1), src.device)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        enc_out, state, mask = self._encode(src, src_len)
        return self.decoder(tgt_in, state, enc_out, mask)[0]

    @torch.no_grad()
    def sequence_logprob(self, src, src_len, tgt_out: torch.Tensor) -> torch.Tensor:
        """[B] sum of log p(token) over tgt_out (hypothesis + </s>), PAD positions ignored."""
        bos = torch.full_like(tgt_out[:, :1], BOS)
        tgt_in = torch.cat([bos, tgt_out[:, :-1]], dim=1).masked_fill(tgt_out == PAD, PAD)
        logp = self(src, src_len, tgt_in).log_softmax(-1)
        tok = logp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)
        return tok.masked_fill(tgt_out == PAD, 0.0).sum(1)

    @staticmethod
    def _next_logprobs(logits: torch.Tensor) -> torch.Tensor:
        """[N, 1, V] -> [N, V] log-probs under the full softmax (so scores match sequence_logprob),
        with <pad> and <s> ruled out as outputs. Greedy and beam share it, so beam 1 == greedy."""
        logp = logits[:, 0].log_softmax(-1)
        logp[:, PAD] = float("-inf")
        logp[:, BOS] = float("-inf")
        return logp

    @torch.no_grad()
    def greedy_decode(self, src, src_len, max_len: int | None = None):
        """-> (ids [B, L] including </s>, PAD after it; attention [B, L, S] or None).
        L <= max_len: decoding stops once every row has produced </s>. Call model.eval() first."""
        max_len = max_len or 2 * src.size(1) + 5
        enc_out, state, mask = self._encode(src, src_len)
        y = torch.full((src.size(0), 1), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        ids, attns = [], []
        for _ in range(max_len):
            logits, state, alpha = self.decoder(y, state, enc_out, mask)
            tok = self._next_logprobs(logits).argmax(-1).masked_fill(done, PAD)
            ids.append(tok)
            if alpha is not None:
                attns.append(alpha[:, 0])
            done = done | (tok == EOS)
            y = tok[:, None]
            if bool(done.all()):
                break
        return torch.stack(ids, 1), (torch.stack(attns, 1) if attns else None)

    @torch.no_grad()
    def beam_search(self, src, src_len, beam_size: int = 5, max_len: int | None = None,
                    length_penalty: float = 0.0):
        """Batched beam search over B * beam rows.
        -> (hyps: list of B id lists without </s>,
            attention: list of B tensors [len(hyp), src_len_i] for the best hypothesis, or None).
        Hypotheses are ranked by summed log-probability during the search; the final pick divides by
        length ** length_penalty (0 = off, so beam 1 equals greedy_decode). Call model.eval() first."""
        max_len = max_len or 2 * src.size(1) + 5
        B, K, V, dev = src.size(0), beam_size, self.tgt_size, src.device
        enc_out, (h, c), mask = self._encode(src, src_len)
        enc_out, mask = enc_out.repeat_interleave(K, 0), mask.repeat_interleave(K, 0)
        state = (h.repeat_interleave(K, 1), c.repeat_interleave(K, 1))

        # Only beam 0 is live at the start; the others would duplicate it.
        scores = torch.full((B, K), float("-inf"), device=dev)
        scores[:, 0] = 0.0
        done = torch.zeros(B, K, dtype=torch.bool, device=dev)
        lengths = torch.zeros(B, K, dtype=torch.long, device=dev)
        tokens = torch.empty(B, K, 0, dtype=torch.long, device=dev)
        attn = torch.empty(B, K, 0, src.size(1), device=dev) if self.decoder.attention else None
        y = torch.full((B * K, 1), BOS, dtype=torch.long, device=dev)
        # A finished hypothesis may only continue with PAD at zero cost, which keeps its score fixed.
        finished_row = torch.full((V,), float("-inf"), device=dev)
        finished_row[PAD] = 0.0

        for _ in range(max_len):
            logits, state, alpha = self.decoder(y, state, enc_out, mask)
            logp = self._next_logprobs(logits).view(B, K, V)
            logp = torch.where(done[..., None], finished_row, logp)
            scores, flat = (scores[..., None] + logp).view(B, K * V).topk(K, dim=-1)
            parent, tok = flat // V, flat % V
            rows = (parent + torch.arange(B, device=dev)[:, None] * K).view(-1)
            state = (state[0][:, rows], state[1][:, rows])
            tokens = torch.cat([tokens.gather(1, parent[..., None].expand(-1, -1, tokens.size(2))),
                                tok[..., None]], dim=2)
            if attn is not None:
                # alpha belongs to the parents (this step's inputs); extend their history, then reorder.
                attn = torch.cat([attn, alpha.view(B, K, 1, -1)], dim=2)
                attn = attn.gather(1, parent[..., None, None].expand(-1, -1, *attn.shape[2:]))
            was_done = done.gather(1, parent)
            lengths = lengths.gather(1, parent) + (~was_done).long()
            done = was_done | (tok == EOS)
            y = tok.view(-1, 1)
            if bool(done.all()):
                break

        final = scores / lengths.clamp(min=1).float() ** length_penalty if length_penalty else scores
        best = final.argmax(-1)
        picked = torch.arange(B, device=dev)
        hyps = trim(tokens[picked, best])  # one device -> host copy for the whole batch
        if attn is None:
            return hyps, None
        best_attn = attn[picked, best].cpu()
        lens = src_len.tolist()
        return hyps, [best_attn[b, : len(h), : lens[b]] for b, h in enumerate(hyps)]


def trim(ids: torch.Tensor) -> list[list[int]]:
    """Greedy output [B, L] -> id lists cut before the first </s> (and without PAD)."""
    out = []
    for row in ids.tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        out.append([t for t in row if t != PAD])
    return out
