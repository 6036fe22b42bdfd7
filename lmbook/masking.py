"""BERT's 80/10/10 masking rule (book: sec-pretraining-mlm; source
section 3.2), how to count its branches, and the exercise checker for a reader's own version.

``mask_tokens_for_mlm`` picks the prediction targets; ``mlm_category_counts`` says how many tokens fell
in each branch; ``check_mlm_masking`` runs a reader's function and names the first property that fails
(the pattern of ``lmbook.attention.check_attention``). The browser widget
``lmbook.widgets.masking.MaskingExplorer`` draws the same rule with its own seeded PRNG.
"""

from __future__ import annotations

import torch

from lmbook.validation import check_int, check_number

__all__ = ["check_mlm_masking", "mask_tokens_for_mlm", "mlm_category_counts"]


def _check_ids(input_ids, vocab_size) -> torch.Tensor:
    """``input_ids`` as a long tensor, after checking it holds integers in ``[0, vocab_size)``."""
    check_int("vocab_size", vocab_size, low=1)
    if isinstance(input_ids, str):
        raise TypeError(f"input_ids must be token ids (a tensor or list of ints), got the string {input_ids[:20]!r}; "
                        f"encode it with the tokenizer first")  # fmt: skip
    try:
        ids = torch.as_tensor(input_ids)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"input_ids must be a tensor or (nested) list of ints, got {type(input_ids).__name__}: "
                        f"{err}") from err
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"input_ids must hold integer token ids, got dtype {ids.dtype}; floats would be truncated")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        bad = int(ids.max()) if int(ids.max()) >= vocab_size else int(ids.min())
        raise ValueError(f"input_ids holds id {bad}, outside the vocabulary [0, vocab_size={vocab_size})")
    return ids.long()


def mask_tokens_for_mlm(input_ids: torch.Tensor | list, *, vocab_size: int, mask_id: int, special_ids,
                        mlm_probability: float = 0.15, generator: torch.Generator | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (book: sec-pretraining-mlm): select ~15 % of tokens.

    Of the selected tokens 80 % become ``mask_id``, 10 % a random non-special token and
    10 % stay unchanged, so the model cannot learn that only ``[MASK]`` needs predicting.
    Special ids (``[CLS]``, ``[SEP]``, padding, ...) are never selected.

    Args:
        input_ids: token ids, any shape, e.g. (B, T).
        vocab_size: size of the vocabulary the random tokens are drawn from.
        mask_id: id of ``[MASK]``.
        special_ids: ids never selected nor drawn as random replacements; include the pad id.
        mlm_probability: chance that a non-special token is selected.
        generator: a seeded ``torch.Generator`` for reproducible masks.

    Returns:
        (masked_input_ids, labels): labels hold the original id at selected positions, -100 elsewhere.

    Raises:
        TypeError: ``input_ids`` is not integer ids (floats, a string); ``vocab_size`` is not an int.
        ValueError: an id outside ``[0, vocab_size)``; ``mlm_probability`` outside [0, 1]; ``mask_id``
            outside the vocabulary.
    """
    ids = _check_ids(input_ids, vocab_size)
    check_number("mlm_probability", mlm_probability, low=0, high=1)
    check_int("mask_id", mask_id, low=0, high=vocab_size - 1)
    special = torch.tensor(sorted(set(int(s) for s in special_ids) | {mask_id}), dtype=torch.long)
    allowed = torch.tensor([i for i in range(vocab_size) if i not in set(special.tolist())], dtype=torch.long)
    if len(allowed) == 0:
        raise ValueError(f"vocab_size={vocab_size} leaves no non-special token to draw")
    is_special = torch.isin(ids, special)
    probs = torch.full(ids.shape, mlm_probability).masked_fill(is_special, 0.0)
    selected = torch.bernoulli(probs, generator=generator).bool()  # (same shape as ids)
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = selected & torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool()
    to_random = selected & ~to_mask & torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool()
    random_ids = allowed[torch.randint(len(allowed), ids.shape, generator=generator)]
    masked = ids.clone()
    masked[to_mask] = mask_id
    masked[to_random] = random_ids[to_random]
    return masked, labels


def mlm_category_counts(input_ids, masked_input_ids, labels, mask_id: int) -> dict[str, int]:
    """How many tokens fell in each branch of the 80/10/10 rule.

    A random replacement that happens to draw the original token counts as ``unchanged``.
    """
    ids, masked, labels = (torch.as_tensor(x) for x in (input_ids, masked_input_ids, labels))
    selected = labels != -100
    n_mask = int((selected & (masked == mask_id)).sum())
    n_same = int((selected & (masked == ids)).sum())
    n_sel = int(selected.sum())
    return {"tokens": ids.numel(), "selected": n_sel, "masked": n_mask, "random": n_sel - n_mask - n_same,
            "unchanged": n_same, "not_selected": ids.numel() - n_sel}


# ----------------------------------------------------------------------------- exercise checker
def _fail(message: str) -> None:
    raise AssertionError(message)


def check_mlm_masking(fn, *, vocab_size: int = 500, mask_id: int = 4, special_ids=(0, 1, 2, 3, 4, 5, 6)) -> str:
    """Check a masking function ``fn(input_ids, vocab_size=, mask_id=, special_ids=, mlm_probability=, generator=)``
    that returns ``(masked_ids, labels)`` like :func:`mask_tokens_for_mlm` (book: sec-pretraining-exercises).

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
