"""Checkers for the exercises of Chapters 4 and 5: they run the reader's function and say what is wrong.

* :func:`check_mlm_masking` (Chapter 4, exercise 1): BERT's 80/10/10 masking rule, against
  the properties :func:`lmbook.data.mask_tokens_for_mlm` has.
* :func:`check_best_span` (Chapter 5, exercise 1): picking the answer span from start and end
  logits, against :func:`lmbook.finetuning.best_span`.

Each checker raises ``AssertionError`` with a message naming the first property that fails,
and returns a short report when everything holds (the pattern of ``lmbook.attention.check_attention``).
"""

from __future__ import annotations

import torch

__all__ = ["check_best_span", "check_mlm_masking"]


def _fail(message: str) -> None:
    raise AssertionError(message)


def check_mlm_masking(fn, *, vocab_size: int = 500, mask_id: int = 4, special_ids=(0, 1, 2, 3, 4, 5, 6)) -> str:
    """Check a masking function ``fn(input_ids, vocab_size=, mask_id=, special_ids=, mlm_probability=, generator=)``
    that returns ``(masked_ids, labels)`` like :func:`lmbook.data.mask_tokens_for_mlm` (Chapter 4, section 4.2).

    Checked on 40,000 token positions at two masking rates: shapes; the input left unmodified; labels
    -100 except on chosen positions, where they hold the original id; special tokens never chosen;
    unchosen positions unchanged; the chosen share close to ``mlm_probability``; of the chosen,
    about 80 % ``[MASK]``, 10 % random and 10 % unchanged; random tokens never special and inside
    the vocabulary; the same ``generator`` seed giving the same result.
    """
    special = torch.tensor(sorted(set(special_ids) | {mask_id}))
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(len(special), vocab_size, (200, 200), generator=g)  # (B, T) real tokens
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    ids[torch.rand(ids.shape, generator=g) < 0.05] = 0  # some padding inside, to be safe
    n_checks = 0
    for p in (0.15, 0.3):
        original = ids.clone()
        out = fn(ids, vocab_size=vocab_size, mask_id=mask_id, special_ids=tuple(special_ids), mlm_probability=p,
                 generator=torch.Generator().manual_seed(7))
        if not (isinstance(out, tuple) and len(out) == 2):
            _fail(f"fn must return (masked_ids, labels), got {type(out).__name__}")
        masked, labels = (torch.as_tensor(x) for x in out)
        if masked.shape != ids.shape or labels.shape != ids.shape:
            _fail(f"masked_ids {tuple(masked.shape)} and labels {tuple(labels.shape)} must have the input's "
                  f"shape {tuple(ids.shape)}")
        if not torch.equal(ids, original):
            _fail("fn modified input_ids in place; work on a copy (input_ids.clone())")
        chosen = labels != -100
        if not torch.equal(labels[chosen], ids[chosen]):
            _fail("labels must hold the ORIGINAL id at chosen positions (and -100 elsewhere)")
        is_special = torch.isin(ids, special)
        if (chosen & is_special).any():
            _fail(f"{int((chosen & is_special).sum())} special tokens ([CLS], [SEP], [PAD], ...) were chosen; "
                  f"they must never be prediction targets")
        if not torch.equal(masked[~chosen], ids[~chosen]):
            _fail(f"{int((masked[~chosen] != ids[~chosen]).sum())} positions changed although their label is "
                  f"-100; only chosen positions may change")
        share = chosen.sum().item() / (~is_special).sum().item()
        if abs(share - p) > 0.015:
            _fail(f"with mlm_probability={p} you chose {share:.1%} of the non-special tokens; expected about {p:.0%}")
        n = chosen.sum().item()
        as_mask = (masked[chosen] == mask_id).sum().item() / n
        same = (masked[chosen] == ids[chosen]).sum().item() / n
        rand = 1 - as_mask - same
        for name, got, want in (("[MASK]", as_mask, 0.8), ("a random token", rand, 0.1), ("unchanged", same, 0.1)):
            if abs(got - want) > 0.03:
                _fail(f"of the chosen tokens {got:.1%} became {name}; BERT's rule asks for {want:.0%} "
                      f"(80 % [MASK], 10 % random, 10 % unchanged)")
        replaced = chosen & (masked != mask_id) & (masked != ids)
        bad = masked[replaced]
        if torch.isin(bad, special).any() or (bad >= vocab_size).any() or (bad < 0).any():
            _fail("a random replacement was a special token or outside [0, vocab_size); draw from real tokens only")
        again = fn(ids, vocab_size=vocab_size, mask_id=mask_id, special_ids=tuple(special_ids), mlm_probability=p,
                   generator=torch.Generator().manual_seed(7))
        if not torch.equal(torch.as_tensor(again[0]), masked):
            _fail("the same generator seed gave a different mask; pass generator= to every random draw")
        n_checks += 9
    return f"check_mlm_masking: all {n_checks} checks passed on {ids.numel():,} tokens at rates 15 % and 30 %"


def check_best_span(fn, *, n_cases: int = 200, max_answer_len: int = 30) -> str:
    """Check ``fn(start_logits, end_logits, allowed, max_answer_len) -> (start, end)`` (Chapter 5, section 5.3).

    The answer must maximise ``start_logits[s] + end_logits[e]`` over ``s <= e < s + max_answer_len``
    with both positions ``allowed`` (the passage tokens); compared with :func:`lmbook.finetuning.best_span`
    on random logits, including cases where the best start comes after the best end.
    """
    from lmbook.finetuning import best_span

    g = torch.Generator().manual_seed(0)
    for case in range(n_cases):
        T = int(torch.randint(8, 60, (1,), generator=g))
        start, end = torch.randn(T, generator=g) * 3, torch.randn(T, generator=g) * 3
        if case % 3 == 0:  # a tempting but invalid pair: best start after best end
            start[T - 2], end[1] = 20.0, 20.0
        allowed = torch.zeros(T, dtype=torch.bool)
        first = int(torch.randint(1, T // 2, (1,), generator=g))
        allowed[first:T - 1] = True  # question and [CLS] before, final [SEP] after
        if case % 5 == 0:
            start[0], end[0] = 50.0, 50.0  # [CLS] is not part of the passage
        want_s, want_e, want = best_span(start, end, allowed, max_answer_len)
        got = fn(start.clone(), end.clone(), allowed.clone(), max_answer_len)
        if not (isinstance(got, (tuple, list)) and len(got) >= 2):
            _fail(f"fn must return (start, end), got {got!r}")
        s, e = int(got[0]), int(got[1])
        where = f"(case {case}: {T} tokens, passage = positions {first}..{T - 2})"
        if not (allowed[s] and allowed[e]):
            _fail(f"your span ({s}, {e}) leaves the passage {where}; both ends must be allowed positions")
        if e < s:
            _fail(f"your span ends before it starts: ({s}, {e}) {where}; require start <= end")
        if e - s + 1 > max_answer_len:
            _fail(f"your span ({s}, {e}) has {e - s + 1} tokens, more than max_answer_len={max_answer_len} {where}")
        score = (start[s] + end[e]).item()
        if score < want - 1e-5:
            _fail(f"your span ({s}, {e}) scores {score:.3f} but ({want_s}, {want_e}) scores {want:.3f} {where}")
    return f"check_best_span: {n_cases} random cases, every span valid and best"
