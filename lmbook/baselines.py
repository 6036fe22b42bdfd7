"""Four generations of language models on one corpus (book: sec-background-four-generations; source sections 1.1-1.3).

Every model here answers the same question -- *how likely is the next token?* -- through
one interface, so that Chapter 1 can put them side by side:

    lm.next_token_probs(context_ids)  -> (V,) probabilities of the next token
    lm.token_log_probs(ids)           -> (N-1,) natural-log p(ids[i] | ids[:i]) for i >= 1

* ``RuleBasedLM``: the 1960s approach -- hand-written rules ("after *of* comes *the*"),
  and no idea at all (uniform) where no rule fires.
* ``NGramLM``: statistical NLP of the 1990s -- counts of n-grams, smoothed with
  interpolated Kneser-Ney so that unseen n-grams keep some probability.
* ``MLPLM``: the first neural language model (Bengio et al., 2003) -- embed the last few
  tokens, one hidden layer, softmax over the vocabulary.
* ``TransformerLM``: wraps an ``lmbook.models.Decoder`` (a small GPT) in the same interface.

Perplexity, ``exp(-mean log p)``, is the effective number of tokens the model hesitates
between; lower is better. The last part measures *vocabulary drift* (book: sec-background-language-changes): the
share of words in new text that a fixed word list has never seen.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.tokenizers import BOS_ID

__all__ = [
    "DEFAULT_RULES", "MLPLM", "NGramLM", "RuleBasedLM", "TransformerLM", "check_perplexity", "context_windows",
    "oov_rate", "perplexity_from_log_probs", "sample_text", "unseen_ngram_rate", "word_level_tokens",
    "word_vocabulary", "words",
]  # fmt: skip


def perplexity_from_log_probs(log_probs: Tensor | Sequence[float]) -> float:
    """exp(-mean(log_probs)) for natural-log token probabilities (book: sec-background-four-generations)."""
    lp = torch.as_tensor(log_probs, dtype=torch.float64)
    if lp.numel() == 0:
        raise ValueError("log_probs is empty; perplexity needs at least one token")
    if (lp > 1e-9).any():
        raise ValueError(f"log_probs must be <= 0 (log of a probability), got max {lp.max().item():.3g}")
    return math.exp(-lp.mean().item())


class _LM:
    """Shared default: score token i from the probabilities ``next_token_probs(ids[:i])``."""

    vocab_size: int

    def next_token_probs(self, context: Sequence[int]) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def token_log_probs(self, ids: Sequence[int]) -> Tensor:
        ids = list(ids)
        return torch.tensor([math.log(self.next_token_probs(ids[:i])[ids[i]].item()) for i in range(1, len(ids))])


# --------------------------------------------------------------------------- 1. rules

DEFAULT_RULES: dict[str, list[str]] = {
    " of": [" the"], " in": [" the"], " to": [" the", " be"], " on": [" the"], " at": [" the"],
    " from": [" the"], " by": [" the"], " with": [" the", " a"], " for": [" the", " a"],
    ".": [" The", " In", " He", " It"], ",": [" and", " the", " which"], " is": [" a", " the"],
    " was": [" a", " the"], " the": [" first", " world", " same"], " a": [" new", " large"],
    " and": [" the"], " United": [" States", " Kingdom"], " such": [" as"],
}
"""Hand-written rules: previous piece -> likely next pieces (rule-based NLP, book: sec-background-four-generations)."""


class RuleBasedLM(_LM):
    """Hand-written next-token rules; uniform over the vocabulary where no rule fires.

    (book: sec-background-four-generations)

    A rule system says *what* comes next, not *how likely*; to score it we give the rule's
    suggestions ``confidence`` of the probability (split evenly) and spread the rest uniformly.

    Args:
        tokenizer: any lmbook tokenizer; rules whose pieces are not single tokens of it are dropped.
        rules: previous piece -> list of next pieces (default :data:`DEFAULT_RULES`).
        confidence: probability mass the rules claim when they fire, in (0, 1).
    """

    def __init__(self, tokenizer, rules: dict[str, list[str]] | None = None, confidence: float = 0.5) -> None:
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        self.vocab_size, self.confidence = tokenizer.vocab_size, confidence

        def single(piece: str) -> int | None:
            ids = tokenizer.encode(piece)
            return ids[0] if len(ids) == 1 else None

        self.rules: dict[int, list[int]] = {}
        for prev, nexts in (DEFAULT_RULES if rules is None else rules).items():
            targets = [i for i in map(single, nexts) if i is not None]
            if single(prev) is not None and targets:
                self.rules[single(prev)] = targets

    def next_token_probs(self, context: Sequence[int]) -> Tensor:
        p = torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=torch.float64)
        targets = self.rules.get(context[-1]) if len(context) else None
        if targets:
            p *= 1 - self.confidence
            p[targets] += self.confidence / len(targets)
        return p

    def token_log_probs(self, ids: Sequence[int]) -> Tensor:
        ids, base = list(ids), (1 - self.confidence) / self.vocab_size
        out = []
        for prev, tok in zip(ids, ids[1:], strict=False):
            targets = self.rules.get(prev)
            if not targets:
                out.append(-math.log(self.vocab_size))
            else:
                out.append(math.log(base + (self.confidence / len(targets) if tok in targets else 0.0)))
        return torch.tensor(out, dtype=torch.float64)


# --------------------------------------------------------------------------- 2. n-grams


class NGramLM(_LM):
    """Interpolated Kneser-Ney n-gram model (statistical NLP; Chen & Goodman, 1999).

    (book: sec-background-four-generations)

    p(w | h) = max(c(h, w) - D, 0) / c(h)  +  D * N(h •) / c(h) * p(w | h minus its first token)

    where at the highest order c counts n-grams, at lower orders c counts *distinct left
    neighbours* (a word that follows many contexts is a good guess for a new one), N(h •) is
    the number of distinct tokens seen after h, and the recursion ends at the uniform 1/V.

    Args:
        ids: training token ids.
        vocab_size: V.
        order: n (1 = unigram, 2 = bigram, 3 = trigram, ...).
        discount: D in (0, 1).
    """

    def __init__(self, ids: Sequence[int], vocab_size: int, order: int = 3, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        ids = list(ids)
        if len(ids) < order:
            raise ValueError(f"ids has {len(ids)} tokens, fewer than order={order}")
        self.vocab_size, self.order, self.discount = vocab_size, order, discount
        # tables[k][context of length k] = {next token: count}; k = order-1 holds raw n-gram counts,
        # lower orders hold continuation counts: how many distinct tokens precede (context, next).
        counts = Counter(zip(*(ids[i:] for i in range(order)), strict=False))  # n-gram -> count
        self.tables: list[dict[tuple, dict[int, int]]] = [{} for _ in range(order)]
        for k in range(order - 1, -1, -1):
            table = self.tables[k]
            for g, c in counts.items():
                table.setdefault(g[:-1], {})[g[-1]] = c
            counts = Counter(g[1:] for g in counts)  # each distinct (k+1)-gram adds 1 to its suffix
        self.totals = [{h: sum(c.values()) for h, c in t.items()} for t in self.tables]

    def prob(self, context: Sequence[int], token: int) -> float:
        """p(token | the last order-1 tokens of context)."""
        p, D = 1.0 / self.vocab_size, self.discount
        context = tuple(context)
        for k in range(min(self.order - 1, len(context)) + 1):
            h = context[len(context) - k :]
            counts = self.tables[k].get(h)
            if counts:
                total = self.totals[k][h]
                p = max(counts.get(token, 0) - D, 0) / total + D * len(counts) / total * p
        return p

    def next_token_probs(self, context: Sequence[int]) -> Tensor:
        p, D = torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=torch.float64), self.discount
        context = tuple(context)
        for k in range(min(self.order - 1, len(context)) + 1):
            h = context[len(context) - k :]
            counts = self.tables[k].get(h)
            if counts:
                total = self.totals[k][h]
                seen = torch.zeros(self.vocab_size, dtype=torch.float64)
                seen[list(counts)] = torch.tensor(list(counts.values()), dtype=torch.float64)
                p = (seen - D).clamp_min(0) / total + D * len(counts) / total * p
        return p

    def token_log_probs(self, ids: Sequence[int]) -> Tensor:
        ids = list(ids)
        n = self.order - 1
        return torch.tensor([math.log(self.prob(ids[max(0, i - n) : i], ids[i])) for i in range(1, len(ids))])


def unseen_ngram_rate(train_ids: Sequence[int], val_ids: Sequence[int], n: int) -> float:
    """Share of the n-grams of ``val_ids`` that never occur in ``train_ids``: without smoothing, each is p = 0."""
    seen = {tuple(train_ids[i : i + n]) for i in range(len(train_ids) - n + 1)}
    grams = [tuple(val_ids[i : i + n]) for i in range(len(val_ids) - n + 1)]
    return sum(g not in seen for g in grams) / max(1, len(grams))


# --------------------------------------------------------------------------- 3. a neural n-gram


def context_windows(ids: Sequence[int] | Tensor, context: int) -> tuple[Tensor, Tensor]:
    """(contexts (N-1, context), targets (N-1,)): for each token i >= 1, the ``context`` tokens before it,
    padded on the left with ``<bos>``."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    padded = torch.cat([torch.full((context,), BOS_ID, dtype=torch.long), ids])  # (context + N,)
    windows = padded.unfold(0, context, 1)  # (N + 1, context): window j = the context of token j
    return windows[1 : len(ids)], ids[1:]


class MLPLM(nn.Module, _LM):
    """Bengio et al. (2003): concatenate the embeddings of the last ``context`` tokens, tanh layer, softmax.

    Args:
        vocab_size: V.
        context: how many previous tokens it sees (a neural (context+1)-gram).
        d_emb: embedding width per token.
        d_hidden: width of the hidden layer.
    """

    def __init__(self, vocab_size: int, context: int = 3, d_emb: int = 64, d_hidden: int = 256) -> None:
        super().__init__()
        self.vocab_size, self.context = vocab_size, context
        self.embedding = nn.Embedding(vocab_size, d_emb)
        self.hidden = nn.Linear(context * d_emb, d_hidden)
        self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, contexts: Tensor) -> Tensor:
        """contexts (B, context) -> logits (B, V)."""
        if contexts.dim() != 2 or contexts.shape[1] != self.context:
            raise ValueError(f"contexts must have shape (batch, {self.context}), got {tuple(contexts.shape)}")
        x = self.embedding(contexts).flatten(1)  # (B, context * d_emb)
        return self.out(torch.tanh(self.hidden(x)))  # (B, V)

    @torch.no_grad()
    def next_token_probs(self, context: Sequence[int]) -> Tensor:
        ctx = ([BOS_ID] * self.context + list(context))[-self.context :]
        return self(torch.tensor([ctx])).double().softmax(-1)[0]

    @torch.no_grad()
    def token_log_probs(self, ids: Sequence[int], batch_size: int = 4096) -> Tensor:
        x, y = context_windows(ids, self.context)
        out = [F.log_softmax(self(x[i : i + batch_size]).double(), -1).gather(1, y[i : i + batch_size, None])[:, 0]
               for i in range(0, len(y), batch_size)]  # fmt: skip
        return torch.cat(out)


# --------------------------------------------------------------------------- 4. a Transformer


class TransformerLM(_LM):
    """An ``lmbook.models.Decoder`` behind the same interface (book: sec-background-four-generations).

    ``token_log_probs`` slides a window of ``max_len`` tokens with half-window steps, so every
    token after the first window is scored with at least ``max_len // 2`` tokens of context.
    """

    def __init__(self, decoder) -> None:
        self.model = decoder.eval()
        self.vocab_size, self.max_len = decoder.config.vocab_size, decoder.config.max_len

    @torch.no_grad()
    def next_token_probs(self, context: Sequence[int]) -> Tensor:
        ctx = list(context)[-self.max_len :] or [BOS_ID]
        return self.model(torch.tensor([ctx])).logits[0, -1].double().softmax(-1)

    @torch.no_grad()
    def token_log_probs(self, ids: Sequence[int], batch_size: int = 32) -> Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long)
        T, step, N = self.max_len, self.max_len // 2, len(ids)
        # Window w starts at w * step; it predicts ids[start+1 : start+T] and keeps the tokens after `scored`.
        plan, scored, start = [], 0, 0
        while scored < N - 1:
            end = min(start + T, N)
            plan.append((start, end, scored - start))  # keep lp[first_new:] of this window
            scored, start = end - 1, start + step
        out = []
        full = [p for p in plan if p[1] - p[0] == T]
        for i in range(0, len(full), batch_size):
            chunk = full[i : i + batch_size]
            windows = torch.stack([ids[a:b] for a, b, _ in chunk])  # (B, T)
            logp = F.log_softmax(self.model(windows).logits.double(), -1)  # (B, T, V)
            lp = logp[:, :-1].gather(2, windows[:, 1:, None])[..., 0]  # (B, T-1)
            out += [lp[j, first:] for j, (_, _, first) in enumerate(chunk)]
        for a, b, first in plan[len(full):]:  # the last, shorter window(s)
            window = ids[a:b]
            logp = F.log_softmax(self.model(window[None]).logits[0].double(), -1)
            out.append(logp[:-1].gather(1, window[1:, None])[first:, 0])
        return torch.cat(out)


def sample_text(lm, tokenizer, prompt: str, n_tokens: int = 30, *, seed: int = 0, temperature: float = 1.0) -> str:
    """Continue ``prompt`` by sampling ``n_tokens`` from any of the models above; returns the new text only."""
    g = torch.Generator().manual_seed(seed)
    ids = tokenizer.encode(prompt)
    start = len(ids)
    for _ in range(n_tokens):
        p = lm.next_token_probs(ids).double().clamp_min(0) ** (1 / temperature)
        ids.append(int(torch.multinomial(p / p.sum(), 1, generator=g)))
    return tokenizer.decode(ids[start:], skip_special_tokens=True)


# ------------------------------------------------------------ vocabulary drift (book: sec-background-language-changes)

_RE_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters, with an inner apostrophe): the units of a word-level vocabulary."""
    return _RE_WORD.findall(text.lower())


def word_vocabulary(text: str, max_size: int | None = None, min_count: int = 1) -> set[str]:
    """The words of ``text`` seen at least ``min_count`` times, at most the ``max_size`` most frequent."""
    counts = Counter(words(text))
    common = [w for w, c in counts.most_common(max_size) if c >= min_count]
    return set(common)


def oov_rate(vocabulary: set[str], text: str) -> float:
    """Share of the running words of ``text`` that are not in ``vocabulary`` (they would become [UNK])."""
    ws = words(text)
    if not ws:
        raise ValueError("text has no words")
    return sum(w not in vocabulary for w in ws) / len(ws)


def word_level_tokens(text: str, vocabulary: set[str]) -> list[str]:
    """What a word-level tokenizer keeps of ``text``: each word, or ``[UNK]`` if it is not in ``vocabulary``."""
    return [w if w in vocabulary else "[UNK]" for w in words(text)]


# --------------------------------------------------------------------------- exercise checker


def check_perplexity(fn: Callable) -> str:
    """Check a reader's ``fn(log_probs) -> perplexity`` (book: sec-background-exercises).

    Raises AssertionError saying what is wrong.

    ``log_probs`` is a 1-D tensor of natural-log probabilities of the observed tokens.
    """
    cases = {
        "a model that gives every token p = 1/4": (torch.full((10,), math.log(0.25)), 4.0),
        "a perfect model (every p = 1)": (torch.zeros(5), 1.0),
        "p = 1/2 then p = 1/8": (torch.log(torch.tensor([0.5, 0.125])), 4.0),
        "a long text of 1000 tokens with p = 1/100": (torch.full((1000,), math.log(0.01)), 100.0),
    }
    for name, (lp, want) in cases.items():
        got = float(fn(lp.clone()))
        if math.isclose(got, want, rel_tol=1e-4):
            continue
        hint = ""
        mean = -lp.mean().item()
        if math.isclose(got, 2**mean, rel_tol=1e-4):
            hint = " -- you used 2**x, but the log-probabilities are natural logs: use exp"
        elif math.isclose(got, math.exp(-lp.sum().item()), rel_tol=1e-4) or math.isinf(got):
            hint = " -- you exponentiated the sum; perplexity uses the mean over tokens"
        elif math.isclose(got, mean, rel_tol=1e-4):
            hint = " -- that is the cross-entropy (mean negative log-probability); take exp of it"
        elif math.isclose(got, 1 / want, rel_tol=1e-4):
            hint = " -- check the sign: perplexity is exp(-mean log p), which is >= 1"
        raise AssertionError(f"for {name} the perplexity is {want:g}, your function gave {got:g}{hint}")
    return f"all {len(cases)} cases correct"
