"""Learning from user feedback: rewards, REINFORCE with a KL penalty, DPO (book: sec-feedback).

A deployed model meets people who like some replies and not others. This module turns
that feedback into training signal for a ``Decoder`` (source sections 1.3 and 2.3):

* **Simulated users** (:class:`SimulatedUser`) stand in for people: each has a stated
  preference and a ``score(text)``; :meth:`SimulatedUser.thumbs` is its 👍/👎 and
  :meth:`SimulatedUser.prefers` picks the better of two replies.
* **REINFORCE with a baseline** (Williams, 1992): sample a reply ``y``, get a reward
  ``R``, and push up ``log π(y)`` in proportion to ``R - b``, where the baseline ``b`` (a
  running or batch mean reward) makes "better than usual" the signal, not "positive".
  A **KL penalty** ``β · KL(π ‖ π_ref)`` to the original model keeps the text fluent, as
  in RLHF (Ouyang et al., 2022)::

      loss = -mean((R - b) · log π(y | x)) + β · KL(π ‖ π_ref)

* **Direct preference optimisation** (Rafailov et al., 2023) skips the reward: given a
  preferred reply ``y+`` and a rejected one ``y-`` it raises the log-ratio margin
  ``[log π(y+) - log π_ref(y+)] - [log π(y-) - log π_ref(y-)]`` through a logistic loss.
* :class:`FeedbackSession`: the live loop - generate, take a 👍/👎, take one small
  policy-gradient step, generate again - which the chapter's widget drives.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FeedbackSession", "SimulatedUser", "check_dpo_loss", "dpo_loss", "evaluate_policy", "kl_to_reference",
           "preference_pairs", "reinforce_loss", "sample_replies", "sequence_logprobs", "token_logprobs", "train_dpo",
           "train_reinforce"]  # fmt: skip


# ----------------------------------------------------------------------------- log-probabilities
def token_logprobs(model: nn.Module, ids: Tensor) -> tuple[Tensor, Tensor]:
    """Logits (B, T-1, V) predicting tokens 1..T-1 of ``ids`` (B, T), and their log-probs (B, T-1)."""
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise ValueError(f"ids must be (batch, seq_len) with seq_len >= 2, got {tuple(ids.shape)}")
    logits = model(ids[:, :-1]).logits  # (B, T-1, V)
    logp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return logits, logp


def sequence_logprobs(model: nn.Module, ids: Tensor, prompt_len: int, mask: Tensor | None = None) -> Tensor:
    """log π(reply | prompt) per row (B,): the sum of the log-probs of tokens ``prompt_len..T-1``.

    ``mask`` (B, T - prompt_len), 1 for reply tokens that count (0 after an end-of-text), is optional.
    """
    if not 1 <= prompt_len < ids.shape[1]:
        raise ValueError(f"prompt_len must be in [1, {ids.shape[1] - 1}] for ids of length {ids.shape[1]}, "
                         f"got {prompt_len}")  # fmt: skip
    _, logp = token_logprobs(model, ids)
    logp = logp[:, prompt_len - 1:]  # (B, reply_len)
    return (logp if mask is None else logp * mask).sum(-1)


def kl_to_reference(logits: Tensor, ref_logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over positions of the exact KL(π ‖ π_ref) = Σ_v π(v) (log π(v) - log π_ref(v)).

    ``logits`` and ``ref_logits`` are (..., V) at the same positions; ``mask`` (...) selects
    the positions that count. Zero when the two models agree; gradients flow into ``logits`` only.
    """
    if logits.shape != ref_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and ref_logits {tuple(ref_logits.shape)} must match")
    logp, ref_logp = logits.log_softmax(-1), ref_logits.detach().log_softmax(-1)
    kl = (logp.exp() * (logp - ref_logp)).sum(-1)  # (...)
    if mask is None:
        return kl.mean()
    return (kl * mask).sum() / mask.sum().clamp_min(1)


def reinforce_loss(logprobs: Tensor, rewards: Tensor, baseline: float | Tensor = 0.0) -> Tensor:
    """Policy-gradient loss ``-mean((R - b) · log π(y))``; its gradient raises the log-probability of
    replies rewarded above the baseline and lowers the others. ``rewards`` and ``baseline`` get no gradient."""
    rewards = torch.as_tensor(rewards, dtype=logprobs.dtype)
    if rewards.shape != logprobs.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} must have the shape of logprobs {tuple(logprobs.shape)}")
    advantage = (rewards - torch.as_tensor(baseline, dtype=logprobs.dtype)).detach()
    return -(advantage * logprobs).mean()


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor]:  # fmt: skip
    """DPO loss ``-mean(log σ(β · margin))`` and the margins (B,), from sequence log-probs (B,) each.

    margin = (log π(y+) - log π_ref(y+)) - (log π(y-) - log π_ref(y-)); at the start (π = π_ref)
    every margin is 0 and the loss is log 2.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    margin = (policy_chosen - ref_chosen.detach()) - (policy_rejected - ref_rejected.detach())
    return -F.logsigmoid(beta * margin).mean(), margin.detach()


def check_dpo_loss(fn: Callable) -> str:
    """Exercise checker (book: sec-feedback-exercises): ``fn(policy_chosen, policy_rejected, ref_chosen,
    ref_rejected, beta) -> loss``, the mean DPO loss over pairs, against :func:`dpo_loss`.

    Raises ``AssertionError`` naming the mistake: a margin of the wrong sign, no β, no reference model,
    a sum instead of a mean, ``log(sigmoid(...))`` that overflows, gradient into the frozen reference.
    """
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (3 * torch.randn(8, generator=g) for _ in range(4))
    beta, margin = 0.5, (pc - rc) - (pr - rr)
    got = fn(pc, pr, rc, rr, beta)
    if not isinstance(got, Tensor) or got.dim() != 0:
        shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        raise AssertionError(f"fn must return the loss as one number (a 0-dim tensor, the mean over pairs), "
                             f"got {shape}")
    mistakes = [(-F.logsigmoid(-beta * margin).mean(), "the margin has the wrong sign: the preferred reply's "
                 "log-ratio log π(y+) - log π_ref(y+) comes first"),
                (-F.logsigmoid(margin).mean(), "β is missing: the loss is -log σ(β · margin)"),
                (-F.logsigmoid(beta * (pc - pr)).mean(), "the reference model is missing: subtract log π_ref from "
                 "each log π"),
                (-F.logsigmoid(beta * margin).sum(), "that is the sum over the pairs: take the mean")]
    for value, message in mistakes:
        if torch.allclose(got, value, atol=1e-5):
            raise AssertionError(message)
    want = dpo_loss(pc, pr, rc, rr, beta)[0]
    if not torch.allclose(got, want, atol=1e-5):
        raise AssertionError(f"loss {got.item():.4f}, expected {want.item():.4f} = -mean(log σ(β · margin))")
    zero = torch.zeros(2)
    far = fn(torch.tensor([-300.0, 300.0]), zero, zero, zero, 1.0)
    if not torch.isfinite(far):
        raise AssertionError(f"the loss is {far.item()} for a margin of -300: log(sigmoid(x)) underflows to "
                             "log 0; use torch.nn.functional.logsigmoid")
    policy, refs = pc.clone().requires_grad_(), (rc.clone().requires_grad_(), rr.clone().requires_grad_())
    fn(policy, pr, refs[0], refs[1], beta).backward()
    if any(r.grad is not None and r.grad.abs().max() > 0 for r in refs):
        raise AssertionError("gradient flows into the reference log-probabilities: the reference model is "
                             "frozen, detach them")
    if policy.grad is None or not (policy.grad < 0).all():
        raise AssertionError("the gradient of the loss must push every log π(y+) up")
    return (f"DPO loss correct: {want.item():.4f} on 8 pairs, finite for a margin of ±300, "
            "no gradient into the reference")


# ----------------------------------------------------------------------------- simulated users
@dataclass
class SimulatedUser:
    """A stand-in for a person with a stated preference (book: sec-feedback-user).

    Args:
        name: a short name for plots.
        preference: the preference in words, e.g. "likes replies about music".
        score: text -> a number, higher is better.
        threshold: ``thumbs`` says 👍 when ``score(text) >= threshold``.
    """

    name: str
    preference: str
    score: Callable[[str], float]
    threshold: float = 0.5

    def thumbs(self, text: str) -> bool:
        """👍 (True) or 👎 (False)."""
        return self.score(text) >= self.threshold

    def prefers(self, a: str, b: str) -> int:
        """0 if it prefers ``a``, 1 if ``b`` (ties go to ``a``)."""
        return int(self.score(b) > self.score(a))

    @classmethod
    def likes_words(cls, words: Sequence[str], name: str = "topic fan") -> SimulatedUser:
        """Scores the fraction of ``words`` (whole words, any case) that appear, capped at 1 for one hit."""
        vocab = {w.lower() for w in words}

        def score(text: str) -> float:
            found = {w for w in re.findall(r"[a-z]+", text.lower()) if w in vocab}
            return min(1.0, float(len(found)))

        return cls(name, f"likes replies that mention any of: {', '.join(sorted(vocab))}", score, 0.5)


    @classmethod
    def likes_numbers(cls, name: str = "numbers fan") -> SimulatedUser:
        """👍 for a reply with a number in it: a digit or a number word (one ... ten, first, year, century...)."""
        words = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "hundred",
                 "thousand", "million", "first", "second", "third", "year", "years", "century"}  # fmt: skip

        def score(text: str) -> float:
            return float(bool(re.search(r"\d", text)) or bool(words & set(re.findall(r"[a-z]+", text.lower()))))

        return cls(name, "likes replies with numbers in them (digits, number words, years)", score, 0.5)


# ----------------------------------------------------------------------------- sampling replies
@torch.no_grad()
def sample_replies(model: nn.Module, prompt_ids: Sequence[int], n: int, max_new_tokens: int, *,
                   temperature: float = 1.0, top_k: int | None = None,
                   generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
    """``n`` sampled continuations of one prompt: (n, len(prompt) + max_new_tokens) ids."""
    from lmbook.generation import generate

    prompt = torch.tensor(list(prompt_ids), dtype=torch.long).repeat(n, 1)  # (n, P)
    return generate(model, prompt, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)


def _reply_loss(policy, reference, ids: Tensor, prompt_len: int, rewards: Tensor, baseline, beta: float):
    """REINFORCE + β·KL on replies ``ids[:, prompt_len:]``; returns (loss, kl)."""
    logits, logp = token_logprobs(policy, ids)
    with torch.no_grad():
        ref_logits = reference(ids[:, :-1]).logits
    reply = slice(prompt_len - 1, None)
    kl = kl_to_reference(logits[:, reply], ref_logits[:, reply])
    loss = reinforce_loss(logp[:, reply].sum(-1), rewards, baseline) + beta * kl
    return loss, kl


@torch.no_grad()
def evaluate_policy(policy, reference, prompt_ids, user: SimulatedUser, decode: Callable, n: int = 64,
                    max_new_tokens: int = 16, seed: int = 1234) -> dict:  # fmt: skip
    """Mean reward of ``n`` sampled replies and the mean per-token KL(π ‖ π_ref) on them."""
    ids = sample_replies(policy, prompt_ids, n, max_new_tokens, generator=torch.Generator().manual_seed(seed))
    p = len(prompt_ids)
    rewards = [user.score(decode(row[p:].tolist())) for row in ids]
    kl = kl_to_reference(policy(ids[:, :-1]).logits[:, p - 1:], reference(ids[:, :-1]).logits[:, p - 1:])
    return {"reward": sum(rewards) / n, "kl": kl.item(), "samples": [decode(r[p:].tolist()) for r in ids[:4]]}


def train_reinforce(policy, reference, prompt_ids, user: SimulatedUser, decode: Callable, *, steps: int = 40,
                    batch_size: int = 16, max_new_tokens: int = 16, lr: float = 1e-3, beta: float = 0.1,
                    seed: int = 0) -> dict:  # fmt: skip
    """REINFORCE with a batch-mean baseline and a KL penalty (book: sec-feedback-reinforce); trains ``policy`` in place.

    Each step samples ``batch_size`` replies, scores them with ``user``, and takes one Adam step
    on ``reinforce_loss(..., baseline=mean reward) + beta * KL``. Returns per-step lists
    ``{"step", "reward", "kl"}`` (the reward of the sampled batch, the KL before the step).
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=lr)
    policy.eval()
    log: dict[str, list] = {"step": [], "reward": [], "kl": []}
    p = len(prompt_ids)
    for step in range(1, steps + 1):
        ids = sample_replies(policy, prompt_ids, batch_size, max_new_tokens, generator=g)
        rewards = torch.tensor([user.score(decode(row[p:].tolist())) for row in ids])
        loss, kl = _reply_loss(policy, reference, ids, p, rewards, rewards.mean(), beta)  # dropout off, as sampled
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        for k, v in (("step", step), ("reward", rewards.mean().item()), ("kl", kl.item())):
            log[k].append(v)
    return log


@torch.no_grad()
def preference_pairs(model, prompt_ids, user: SimulatedUser, decode: Callable, n_pairs: int,
                     max_new_tokens: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(chosen, rejected) ids, each (n_pairs, P + max_new_tokens): two samples of ``model`` per pair,
    ordered by ``user.prefers``; pairs the user scores equally are skipped (it has no preference)."""
    g = torch.Generator().manual_seed(seed)
    chosen, rejected, p = [], [], len(prompt_ids)
    for _ in range(20):
        ids = sample_replies(model, prompt_ids, 2 * n_pairs, max_new_tokens, generator=g)
        for a, b in zip(ids[0::2], ids[1::2], strict=True):
            sa, sb = user.score(decode(a[p:].tolist())), user.score(decode(b[p:].tolist()))
            if sa != sb and len(chosen) < n_pairs:
                chosen.append(a if sa > sb else b)
                rejected.append(b if sa > sb else a)
        if len(chosen) == n_pairs:
            return torch.stack(chosen), torch.stack(rejected)
    raise RuntimeError(f"found only {len(chosen)} of {n_pairs} pairs with a preference; the user likes "
                       f"(almost) every reply the same")  # fmt: skip


def train_dpo(policy, reference, chosen: Tensor, rejected: Tensor, prompt_len: int, *, steps: int = 40,
              batch_size: int = 16, lr: float = 1e-3, beta: float = 0.1, seed: int = 0) -> dict:  # fmt: skip
    """DPO on preference pairs (book: sec-feedback-dpo); trains ``policy`` in place.

    Returns per-step lists ``{"step", "loss", "margin", "accuracy"}``; accuracy is the fraction
    of the batch whose margin is positive (the policy ranks the pair as the user did).
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=lr)
    with torch.no_grad():
        ref_c = sequence_logprobs(reference, chosen, prompt_len)
        ref_r = sequence_logprobs(reference, rejected, prompt_len)
    log: dict[str, list] = {"step": [], "loss": [], "margin": [], "accuracy": []}
    policy.eval()  # dropout off: the margins compare the policy with the reference on the same footing
    for step in range(1, steps + 1):
        idx = torch.randperm(len(chosen), generator=g)[:batch_size]
        loss, margin = dpo_loss(sequence_logprobs(policy, chosen[idx], prompt_len),
                                sequence_logprobs(policy, rejected[idx], prompt_len), ref_c[idx], ref_r[idx], beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        for k, v in (("step", step), ("loss", loss.item()), ("margin", margin.mean().item()),
                     ("accuracy", (margin > 0).float().mean().item())):  # fmt: skip
            log[k].append(v)
    return log


# ----------------------------------------------------------------------------- the live loop
@dataclass
class FeedbackSession:
    """Generate → 👍/👎 → a policy-gradient step → generate again (book: sec-feedback-live-loop).

    The policy starts as a copy of ``model``; another, frozen copy is the reference of the KL
    penalty (``model`` itself is not touched). A 👍 is reward 1, a 👎 reward 0.

    With ``memory=1`` each click trains on the newest reply only, against a running-mean
    baseline, so a 👍 after many 👎 pushes harder than one more 👍 in a row. One reply is a
    very noisy gradient, so by default a click trains on the ``memory`` most recent rated
    replies (the baseline is their mean reward: liked replies go up, the others down) for
    ``updates`` optimiser steps. Older replies were sampled from an earlier policy; for a few
    dozen clicks that bias is small, and it is what lets a few clicks move the model.
    Dropout stays off during the steps: the replies were sampled without it.

    Args:
        model: a ``Decoder`` (not modified); tokenizer: its tokenizer (``encode``/``decode``).
        prompt: text every reply continues (after ``bos_id``, if given). lr, beta: step size and KL weight.
        max_new_tokens, temperature, top_k: how replies are sampled. seed: sampling seed.
        memory: how many of the latest rated replies each click trains on. updates: steps per click.
    """

    model: nn.Module
    tokenizer: object
    prompt: str
    lr: float = 3e-4
    beta: float = 0.1
    max_new_tokens: int = 16
    temperature: float = 1.0
    top_k: int | None = 50
    seed: int = 0
    bos_id: int | None = None
    baseline_decay: float = 0.8
    memory: int = 16
    updates: int = 2
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("memory", "updates", "max_new_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"lr must be finite and > 0 and beta finite and >= 0, got lr={self.lr}, beta={self.beta}")
        self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)  # ``model`` is left as it was
        self.policy = copy.deepcopy(self.reference).requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.prompt_ids = ([] if self.bos_id is None else [self.bos_id]) + self.tokenizer.encode(self.prompt)
        self.baseline, self.pending, self.rated = 0.5, None, []

    def generate(self) -> str:
        """Sample a reply from the current policy; it waits for :meth:`feedback`."""
        ids = sample_replies(self.policy, self.prompt_ids, 1, self.max_new_tokens, temperature=self.temperature,
                             top_k=self.top_k, generator=self.generator)  # fmt: skip
        self.pending = ids
        return self.reply_text(ids[0])

    def reply_text(self, ids: Tensor) -> str:
        return self.tokenizer.decode(ids[len(self.prompt_ids):].tolist())

    def feedback(self, liked: bool) -> dict:
        """Record 👍 (True) or 👎 (False) for the last reply and take one step; returns that step's numbers."""
        if self.pending is None:
            raise RuntimeError("call generate() before feedback(): there is no reply to rate")
        ids, self.pending = self.pending, None
        reward = 1.0 if liked else 0.0
        self.rated.append((ids[0], reward))
        batch = self.rated[-self.memory:]
        batch_ids, rewards = torch.stack([i for i, _ in batch]), torch.tensor([r for _, r in batch])
        baseline = self.baseline if len(batch) == 1 else rewards.mean()
        for k in range(self.updates):
            loss, step_kl = _reply_loss(self.policy, self.reference, batch_ids, len(self.prompt_ids), rewards,
                                        baseline, self.beta)  # fmt: skip
            if k == 0:
                kl = step_kl  # the KL before this click's steps
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
            self.optimizer.step()
        entry = {"step": len(self.history) + 1, "reply": self.reply_text(ids[0]), "liked": bool(liked),
                 "reward": reward, "baseline": float(baseline), "kl": kl.item()}  # fmt: skip
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self.history.append(entry)
        return entry

    def record(self, user: SimulatedUser, rounds: int) -> dict:
        """Let ``user`` click for ``rounds`` rounds; returns the session as JSON-able data for the replay."""
        for _ in range(rounds):
            text = self.generate()
            self.feedback(user.thumbs(text))
        return {"prompt": self.prompt, "user": user.preference, "lr": self.lr, "beta": self.beta,
                "memory": self.memory, "updates": self.updates, "steps": list(self.history)}  # fmt: skip
