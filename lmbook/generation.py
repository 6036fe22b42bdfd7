"""Turning next-token distributions into text (book: sec-pretraining-causal-lm, sec-prompting-sampling).

Source section 4.5.

A language model gives, for every prefix, logits over the vocabulary. Decoding is
the loop around it: pick a token, append it, ask again. How we pick shapes the text:

- greedy: always the most likely token (deterministic, often repetitive);
- temperature: divide the logits by T before the softmax; T < 1 sharpens, T > 1 flattens;
- top-k: keep only the k most likely tokens; top-p (nucleus): keep the smallest set
  whose probability reaches p;
- beam search (encoder-decoder): keep the ``beam_size`` best partial outputs by total
  log-probability instead of committing to one token at a time.

With a ``KVCache`` per layer each new token attends to stored keys and values, so a
step costs one token's work instead of re-running the whole prefix.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor

from lmbook.attention import KVCache
from lmbook.models import Decoder, Transformer
from lmbook.validation import check_int, check_number

__all__ = ["apply_temperature", "beam_search", "generate", "greedy_decode", "top_k_filter", "top_p_filter"]


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """logits / temperature (temperature > 0)."""
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r} (use greedy=True instead)")
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits in the last dim, set the rest to -inf (ties at the k-th value are kept)."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {k!r}")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the most likely tokens until their probability reaches p; the rest get -inf.

    A token is kept if the tokens ranked above it hold less than p of the probability,
    so the most likely token always survives.
    """
    if not (isinstance(p, (int, float)) and 0 < p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {p!r}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # probability of the tokens ranked above
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


@contextmanager
def _eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _next_token(logits: Tensor, greedy, temperature, top_k, top_p, generator) -> Tensor:
    """logits (B, V) -> token ids (B, 1)."""
    if greedy:
        return logits.argmax(-1, keepdim=True)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)  # (B, 1)


def generate(
    model: Decoder,
    input_ids: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
) -> Tensor:
    """Continue ``input_ids`` (B, T) or (T,) by ``max_new_tokens`` tokens with a ``Decoder``.

    (book: sec-pretraining-causal-lm)

    Runs in eval mode without gradients (the model's mode is restored afterwards). When the
    context would outgrow ``max_len`` only the last ``max_len`` tokens are fed, as in nanoGPT;
    with the cache this means re-filling it for each step beyond that point. Once every row
    has produced ``eos_id`` generation stops; rows that finished early are padded with ``eos_id``.

    Returns:
        The prompt followed by the new tokens, same rank as ``input_ids``.
    """
    _check_model(model, Decoder, "generate")
    _check_token_ids("input_ids", input_ids, model.config.vocab_size)
    if input_ids.dim() not in (1, 2) or input_ids.shape[-1] == 0:
        shape = tuple(input_ids.shape)
        raise ValueError(f"input_ids must be a non-empty (batch, seq_len) or (seq_len,) prompt, got shape {shape}")
    check_int("max_new_tokens", max_new_tokens, low=0)
    if eos_id is not None:
        check_int("eos_id", eos_id, low=0, high=model.config.vocab_size - 1)
    if not greedy:  # check the sampling arguments before the first forward pass
        _next_token(torch.zeros(1, 2), False, temperature, top_k, top_p, None)
    squeeze = input_ids.dim() == 1
    ids = input_ids[None] if squeeze else input_ids  # (B, T)
    max_len = model.config.max_len
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    caches, step_input = None, ids[:, -max_len:]
    with _eval_mode(model):
        for _ in range(max_new_tokens):
            if use_cache:
                if caches is None or len(caches[0]) + step_input.shape[1] > max_len:
                    caches, step_input = model.new_caches(), ids[:, -max_len:]  # (re)fill the cache
                logits = model(step_input, caches=caches).logits[:, -1]  # (B, V)
            else:
                logits = model(ids[:, -max_len:]).logits[:, -1]  # (B, V)
            nxt = _next_token(logits, greedy, temperature, top_k, top_p, generator)  # (B, 1)
            if eos_id is not None:
                nxt = nxt.masked_fill(done[:, None], eos_id)
                done |= nxt[:, 0] == eos_id
            ids = torch.cat([ids, nxt], dim=1)
            step_input = nxt
            if eos_id is not None and done.all():
                break
    return ids[0] if squeeze else ids


def _check_token_ids(name: str, ids, vocab_size: int) -> None:
    """``ids`` must be an integer tensor with every id in ``[0, vocab_size)``; the message names ``name``."""
    if isinstance(ids, str):
        raise TypeError(f"{name} must be a tensor of token ids, got the string {ids[:20]!r}; "
                        f"encode it first, e.g. torch.tensor([tokenizer.encode(text)])")  # fmt: skip
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        bad = int(ids.max()) if int(ids.max()) >= vocab_size else int(ids.min())
        raise ValueError(f"{name} holds id {bad}, outside the model's vocabulary [0, {vocab_size})")


def _check_model(model, cls: type, caller: str) -> None:
    if not isinstance(model, cls):
        what = {"Decoder": "a Decoder (a causal language model)", "Transformer": "an encoder-decoder Transformer"}
        raise TypeError(f"{caller} needs {what.get(cls.__name__, cls.__name__)}, got {type(model).__name__}")


def _check_seq2seq_args(src: Tensor, max_len: int, model: Transformer, bos_id: int, eos_id: int,
                        src_mask: Tensor | None, caller: str) -> None:  # fmt: skip
    _check_model(model, Transformer, caller)
    _check_token_ids("src", src, model.config.src_vocab_size)
    if src.dim() != 2 or src.shape[1] == 0:
        raise ValueError(f"src must be a non-empty (batch, seq_len) tensor, got {tuple(src.shape)}")
    check_int("max_len", max_len)
    if not 2 <= max_len <= model.config.max_len:
        raise ValueError(f"max_len must be in [2, model.config.max_len={model.config.max_len}], got {max_len}")
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
        check_int(name, value, low=0, high=model.config.tgt_vocab_size - 1)
    if src_mask is not None and (not isinstance(src_mask, Tensor) or src_mask.shape[0] != src.shape[0]):
        got = tuple(src_mask.shape) if isinstance(src_mask, Tensor) else type(src_mask).__name__
        raise ValueError(f"src_mask must be a tensor with src's batch size {src.shape[0]} first, got {got}")


def greedy_decode(
    model: Transformer, src: Tensor, max_len: int, bos_id: int, eos_id: int, src_mask: Tensor | None = None
) -> Tensor:
    """Encode src (B, S) once, then emit the most likely token until ``eos_id`` or ``max_len`` tokens.

    Returns:
        (B, L) target ids starting with ``bos_id``; rows that finished early are padded with ``eos_id``.
    """
    _check_seq2seq_args(src, max_len, model, bos_id, eos_id, src_mask, "greedy_decode")
    with _eval_mode(model):
        memory, _ = model.encode(src, src_mask)  # (B, S, d)
        ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        caches = [KVCache() for _ in model.decoder_layers]  # target self-attention; memory is fixed
        step = ys
        while ys.shape[1] < max_len and not done.all():
            logits = model.decode(step, memory, src, src_mask, caches=caches).logits[:, -1]  # (B, V)
            nxt = logits.argmax(-1).masked_fill(done, eos_id)[:, None]  # (B, 1)
            done |= nxt[:, 0] == eos_id
            ys, step = torch.cat([ys, nxt], dim=1), nxt
    return ys


def beam_search(
    model: Transformer,
    src: Tensor,
    beam_size: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
    length_penalty: float = 1.0,
    src_mask: Tensor | None = None,
) -> list[tuple[Tensor, float]]:
    """Beam search for each source sentence in src (B, S) (book: sec-translation-dictionary).

    Keeps the ``beam_size`` highest-scoring prefixes (sum of log-probabilities). A prefix
    that emits ``eos_id`` is finished; finished outputs are ranked by
    ``log p(y) / len(y) ** length_penalty`` (``len`` counts the tokens after ``bos``;
    ``length_penalty=0`` ranks by raw log-probability, which favours short outputs).
    Search for a sentence stops when ``beam_size`` outputs are finished and none of the
    live prefixes can beat the best one at its current length, or at ``max_len`` tokens.

    Returns:
        For each sentence, ``(ids, score)``: the best output (1-D, starting with ``bos_id``)
        and its length-normalised log-probability.
    """
    _check_seq2seq_args(src, max_len, model, bos_id, eos_id, src_mask, "beam_search")
    check_int("beam_size", beam_size, low=1)
    check_number("length_penalty", length_penalty)
    results = []
    with _eval_mode(model):
        for b in range(src.shape[0]):
            one_src = src[b : b + 1]
            one_mask = None if src_mask is None else src_mask[b : b + 1]
            memory, _ = model.encode(one_src, one_mask)  # (1, S, d)
            beams = torch.full((1, 1), bos_id, dtype=torch.long, device=src.device)  # (k, L)
            scores = torch.zeros(1, device=src.device)  # (k,) summed log-probs
            finished: list[tuple[float, Tensor]] = []  # (normalised score, ids)
            while beams.shape[1] < max_len and len(beams):
                k = beams.shape[0]
                mem, s = memory.expand(k, -1, -1), one_src.expand(k, -1)
                m = None if one_mask is None else one_mask.expand(k, -1)
                logp = model.decode(beams, mem, s, m).logits[:, -1].log_softmax(-1)  # (k, V)
                cand = (scores[:, None] + logp).flatten()  # (k * V,)
                top = cand.topk(min(2 * beam_size, cand.numel()))
                V, length = logp.shape[-1], beams.shape[1]  # length of each candidate after bos
                keep_rows, keep_tok, keep_scores = [], [], []
                for score, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    row, tok = divmod(idx, V)
                    if tok == eos_id:
                        seq = torch.cat([beams[row], beams.new_tensor([eos_id])])
                        finished.append((score / length**length_penalty, seq))
                    elif len(keep_rows) < beam_size:
                        keep_rows.append(row)
                        keep_tok.append(tok)
                        keep_scores.append(score)
                    if len(keep_rows) == beam_size:
                        break
                beams = torch.cat([beams[keep_rows], beams.new_tensor(keep_tok)[:, None]], dim=1)
                scores = scores.new_tensor(keep_scores)
                best_done = max((f[0] for f in finished), default=float("-inf"))
                best_live = scores.max().item() / length**length_penalty if len(scores) else float("-inf")
                if len(finished) >= beam_size and best_done >= best_live:
                    break
            if not finished or (len(scores) and beams.shape[1] >= max_len):
                L = beams.shape[1] - 1
                finished += [(s / L**length_penalty, seq) for s, seq in zip(scores.tolist(), beams, strict=True)]
            score, seq = max(finished, key=lambda f: f[0])
            results.append((seq, score))
    return results
