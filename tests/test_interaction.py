"""LoRA, the REINFORCE and DPO losses, the KL penalty and the feedback loop (lmbook.lora, lmbook.interaction)."""

import math

import pytest
import torch
from torch import nn

from lmbook.interaction import (
    FeedbackSession,
    SimulatedUser,
    dpo_loss,
    kl_to_reference,
    reinforce_loss,
    sequence_logprobs,
    token_logprobs,
)
from lmbook.lora import LoRALinear, apply_lora, lora_parameters, merge_lora
from lmbook.models import Decoder, DecoderConfig
from lmbook.training import count_parameters


@pytest.fixture
def decoder():
    return Decoder(DecoderConfig(vocab_size=40, max_len=32, n_layers=2, n_heads=2, d_model=16)).eval()


class ToyTokenizer:
    def encode(self, text):
        return [ord(c) % 40 for c in text]

    def decode(self, ids):
        return "".join(chr(97 + i % 26) for i in ids)


# ----------------------------------------------------------------------------- LoRA
def test_lora_with_zero_b_leaves_outputs_unchanged(decoder):
    ids = torch.randint(0, 40, (2, 10))
    before = decoder(ids).logits
    apply_lora(decoder, r=4, targets=("q_proj", "v_proj", "linear1"))
    torch.testing.assert_close(decoder(ids).logits, before, atol=1e-6, rtol=0)


def test_lora_trains_only_the_adapters(decoder):
    total = count_parameters(decoder)
    apply_lora(decoder, r=4, alpha=8, targets=("q_proj", "v_proj"))
    expected = 2 * 2 * 4 * (16 + 16)  # 2 layers x (q, v) x r x (d_in + d_out)
    assert count_parameters(decoder, trainable_only=True) == expected
    assert sum(p.numel() for p in lora_parameters(decoder)) == expected
    assert count_parameters(decoder) == total + expected


def test_lora_forward_equals_its_effective_weight_and_merges_exactly(decoder):
    apply_lora(decoder, r=3, alpha=6, targets=("q_proj", "v_proj", "out_proj", "linear1", "linear2"))
    for p in lora_parameters(decoder):
        nn.init.normal_(p, std=0.3)
    layer = decoder.blocks[0].self_attn.q_proj
    x = torch.randn(5, 16)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias, atol=1e-5, rtol=1e-5)
    assert layer.scaling == 2.0
    ids = torch.randint(0, 40, (2, 10))
    adapted = decoder(ids).logits
    merge_lora(decoder)
    assert not any(isinstance(m, LoRALinear) for m in decoder.modules())
    torch.testing.assert_close(decoder(ids).logits, adapted, atol=1e-5, rtol=1e-5)
    fresh = Decoder(decoder.config)
    fresh.load_state_dict(decoder.state_dict())  # the merged model has the original layout again


def test_lora_bad_arguments_are_named(decoder):
    with pytest.raises(ValueError, match="r \\(the rank\\) must be an integer >= 1"):
        LoRALinear(nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="no nn.Linear named like targets"):
        apply_lora(decoder, targets=("wq",))
    with pytest.raises(TypeError, match="base must be an nn.Linear"):
        LoRALinear(nn.Conv1d(1, 1, 1))


# ----------------------------------------------------------------------------- log-probs and KL
def test_sequence_logprobs_sum_the_reply_tokens(decoder):
    ids = torch.randint(0, 40, (3, 9))
    logits = decoder(ids[:, :-1]).logits.log_softmax(-1)
    by_hand = sum(logits[:, t - 1].gather(-1, ids[:, t:t + 1]).squeeze(-1) for t in range(4, 9))
    torch.testing.assert_close(sequence_logprobs(decoder, ids, prompt_len=4), by_hand)
    _, per_token = token_logprobs(decoder, ids)
    assert per_token.shape == (3, 8) and (per_token <= 0).all()
    with pytest.raises(ValueError, match="prompt_len must be in"):
        sequence_logprobs(decoder, ids, prompt_len=9)


def test_kl_is_zero_for_identical_models_and_positive_otherwise():
    logits = torch.randn(4, 6, 10)
    assert kl_to_reference(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-7)
    other = logits + torch.randn(4, 6, 10)
    kl = kl_to_reference(other, logits)
    p, q = other.softmax(-1), logits.softmax(-1)
    assert kl.item() == pytest.approx((p * (p / q).log()).sum(-1).mean().item(), rel=1e-5) and kl > 0
    mask = torch.zeros(4, 6)
    mask[:, :2] = 1
    assert kl_to_reference(other, logits, mask).item() == pytest.approx(
        kl_to_reference(other[:, :2], logits[:, :2]).item(), rel=1e-6)


# ----------------------------------------------------------------------------- REINFORCE and DPO
def test_reinforce_gradient_raises_the_rewarded_reply():
    """A two-armed bandit: arm 1 is rewarded above the baseline, so a gradient step makes it likelier."""
    theta = torch.zeros(2, requires_grad=True)
    logp = theta.log_softmax(-1)
    loss = reinforce_loss(logp[torch.tensor([0, 1])], torch.tensor([0.0, 1.0]), baseline=0.5)
    loss.backward()
    assert theta.grad[1] < 0 < theta.grad[0], "descending the loss must raise the rewarded arm"
    with torch.no_grad():
        new = (theta - 0.1 * theta.grad).softmax(-1)
    assert new[1] > 0.5
    # A reward equal to the baseline gives no gradient at all.
    theta.grad = None
    reinforce_loss(theta.log_softmax(-1), torch.tensor([0.3, 0.3]), 0.3).backward()
    assert theta.grad.abs().max() == 0


def test_dpo_loss_starts_at_log2_and_prefers_the_chosen():
    zeros = torch.zeros(3)
    loss, margin = dpo_loss(zeros, zeros, zeros, zeros)
    assert loss.item() == pytest.approx(math.log(2)) and (margin == 0).all()
    chosen = torch.zeros(3, requires_grad=True)
    rejected = torch.zeros(3, requires_grad=True)
    dpo_loss(chosen, rejected, zeros, zeros, beta=0.5)[0].backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(zeros, zeros, zeros, zeros, beta=0)


# ----------------------------------------------------------------------------- users and the live loop
def test_simulated_user_scores_thumbs_and_preferences():
    user = SimulatedUser.likes_words(["music", "song"])
    assert user.score("A new Song today") == 1.0 and user.score("taxes") == 0.0
    assert user.thumbs("music!") and not user.thumbs("nothing here")
    assert user.prefers("taxes", "a song") == 1 and user.prefers("a song", "taxes") == 0
    assert "music" in user.preference


def test_feedback_session_steps_and_records(decoder):
    session = FeedbackSession(decoder, ToyTokenizer(), "hello", lr=1e-2, max_new_tokens=5, seed=0)
    with pytest.raises(RuntimeError, match="call generate\\(\\) before feedback"):
        session.feedback(True)
    before = [p.clone() for p in session.policy.parameters()]
    reply = session.generate()
    assert isinstance(reply, str) and len(reply) == 5
    entry = session.feedback(True)
    assert entry["step"] == 1 and entry["reward"] == 1.0 and entry["kl"] == pytest.approx(0.0, abs=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(before, session.policy.parameters(), strict=True))
    assert all(not p.requires_grad for p in session.reference.parameters()), "the reference stays frozen"
    assert all(p.requires_grad for p in decoder.parameters()), "the model passed in is not touched"
    rec = session.record(SimulatedUser.likes_words(["a"]), rounds=2)
    assert [s["step"] for s in rec["steps"]] == [1, 2, 3] and rec["steps"][-1]["kl"] > 0


def test_feedback_session_memory_replays_recent_ratings(decoder):
    with pytest.raises(ValueError, match="memory"):
        FeedbackSession(decoder, ToyTokenizer(), "hello", memory=0)
    with pytest.raises(ValueError, match="lr"):
        FeedbackSession(decoder, ToyTokenizer(), "hello", lr=float("nan"))
    session = FeedbackSession(decoder, ToyTokenizer(), "hello", lr=1e-2, max_new_tokens=5, seed=0, memory=3)
    for liked in (True, False, False, True):
        session.generate()
        entry = session.feedback(liked)
    assert len(session.rated) == 4
    # the baseline of a click is the mean reward of the replies it trains on: the last 3 (0, 0, 1)
    assert entry["baseline"] == pytest.approx(1 / 3)
    one = FeedbackSession(decoder, ToyTokenizer(), "hello", lr=1e-2, max_new_tokens=5, seed=0, memory=1, updates=1)
    one.generate()
    assert one.feedback(True)["baseline"] == 0.5, "memory=1 keeps the running-mean baseline, which starts at 0.5"


# ----------------------------------------------------------------------------- exercise checkers
def test_check_dpo_loss_accepts_the_right_answer_and_names_mistakes():
    import torch.nn.functional as F

    from lmbook.interaction import check_dpo_loss

    def right(pc, pr, rc, rr, beta):
        return -F.logsigmoid(beta * ((pc - rc.detach()) - (pr - rr.detach()))).mean()

    assert "correct" in check_dpo_loss(right)
    wrong = {
        "wrong sign": lambda pc, pr, rc, rr, beta: right(pr, pc, rr, rc, beta),
        "β is missing": lambda pc, pr, rc, rr, beta: right(pc, pr, rc, rr, 1.0),
        "reference model is missing": lambda pc, pr, rc, rr, beta: right(pc, pr, 0 * rc, 0 * rr, beta),
        "sum over the pairs": lambda pc, pr, rc, rr, beta: len(pc) * right(pc, pr, rc, rr, beta),
        "logsigmoid": lambda pc, pr, rc, rr, beta: -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean(),
        "detach them": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean(),
        "one number": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))),
        "expected": lambda pc, pr, rc, rr, beta: right(pc, pr, rc, rr, beta) + 0.1,
    }
    for words, fn in wrong.items():
        with pytest.raises(AssertionError, match=words):
            check_dpo_loss(fn)


def test_check_lora_accepts_the_right_answer_and_names_mistakes():
    from lmbook.lora import check_lora

    class Right(nn.Module):
        def __init__(self, base, r, alpha, *, frozen=True, b_init=0.0, scale=True, a_init=1.0):
            super().__init__()
            self.base, self.scale = base, (alpha / r if scale else 1.0)
            base.requires_grad_(not frozen)
            self.lora_A = nn.Parameter(a_init * torch.randn(r, base.in_features))
            self.lora_B = nn.Parameter(torch.full((base.out_features, r), b_init))

        def forward(self, x):
            return self.base(x) + self.scale * (x @ self.lora_A.T @ self.lora_B.T)

    assert "ok" in check_lora(Right)
    wrong = {
        "only lora_A and lora_B may be trainable": lambda b, r, a: Right(b, r, a, frozen=False),
        "start lora_B at zero": lambda b, r, a: Right(b, r, a, b_init=0.1),
        "initialise A randomly": lambda b, r, a: Right(b, r, a, a_init=0.0),
        "alpha / r": lambda b, r, a: Right(b, r, a, scale=False),
    }
    for words, cls in wrong.items():
        with pytest.raises(AssertionError, match=words):
            check_lora(cls)
