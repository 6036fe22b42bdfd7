"""Tests for lmbook.training: schedule, loop, history and checkpoints, on models small enough for a CPU."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lmbook.training import (
    History,
    count_parameters,
    load_checkpoint,
    lr_schedule,
    read_metrics,
    register_model,
    save_checkpoint,
    train,
)

torch.set_num_threads(1)


@dataclass
class TinyConfig:
    d_in: int = 4
    d_hidden: int = 8
    dropout: float = 0.0
    sizes: tuple[int, ...] = (1, 2)


class TinyModel(nn.Module):
    """A two-layer regression net built the lmbook way: ``TinyModel(config)``."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        d_in, hidden = config.d_in, config.d_hidden
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Dropout(config.dropout), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


@dataclass
class TiedConfig:
    vocab: int = 11
    d_model: int = 6


@register_model
class TiedLM(nn.Module):
    """Embedding and output layer share one matrix, as in GPT-2 and BERT."""

    config_class = TiedConfig

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab, config.d_model)
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(self.norm(self.emb(ids)))


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def regression_batches(n_batches=4, batch_size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, generator=g)
    xs = [torch.randn(batch_size, 4, generator=g) for _ in range(n_batches)]
    return [(x, x @ w) for x in xs]


def test_lr_schedule_warmup_peak_and_floor():
    kw = dict(lr=1.0, steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_schedule(0, **kw) == pytest.approx(1 / 11)
    assert lr_schedule(9, **kw) == pytest.approx(10 / 11)
    assert lr_schedule(10, **kw) == pytest.approx(1.0)
    assert lr_schedule(99, **kw) == pytest.approx(0.1)
    assert lr_schedule(500, **kw) == pytest.approx(0.1)
    values = [lr_schedule(s, **kw) for s in range(100)]
    assert all(a < b for a, b in zip(values[:10], values[1:11], strict=True))
    assert all(a > b for a, b in zip(values[10:-1], values[11:], strict=True))
    # halfway through a warmup-free cosine sits halfway between peak and floor
    assert lr_schedule(50, lr=2.0, steps=101, warmup_steps=0, min_lr_ratio=0.1) == pytest.approx(1.1)
    assert lr_schedule(0, lr=2.0, steps=101, warmup_steps=0) == pytest.approx(2.0)


def test_train_fits_a_tiny_regression():
    torch.manual_seed(0)
    model = TinyModel(TinyConfig())
    history = train(model, regression_batches(), mse, steps=150, lr=3e-2, warmup_steps=5, progress=False, seed=0)
    assert history.steps == list(range(1, 151))
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert history.lrs[5] == pytest.approx(3e-2) and history.lrs[-1] == pytest.approx(3e-3)
    assert len(history.grad_norms) == 150 and all(g >= 0 for g in history.grad_norms)
    assert history.elapsed_s > 0 and 0 < history.ms_per_step <= 1000 * history.elapsed_s / 150 + 1e-9
    assert model.training  # mode restored


def test_weight_decay_only_on_matrices():
    model = TinyModel(TinyConfig())
    for p in model.parameters():
        nn.init.constant_(p, 1.0)
    zero = (torch.zeros(2, 4), torch.zeros(2))

    def no_gradient(model, batch):
        return (model(batch[0]) * 0).sum()

    train(model, [zero], no_gradient, steps=3, lr=0.1, weight_decay=0.5, warmup_steps=0, progress=False)
    first, last = model.net[0], model.net[3]
    assert torch.all(first.weight < 1) and torch.all(last.weight < 1)  # decayed
    assert torch.all(first.bias == 1) and torch.all(last.bias == 1)  # untouched


def test_grad_clip_caps_the_applied_gradient_and_logs_the_raw_norm():
    torch.manual_seed(0)
    model = TinyModel(TinyConfig())
    big = [(x, 100 * y) for x, y in regression_batches(1)]
    history = train(model, big, mse, steps=2, grad_clip=0.5, progress=False)
    applied = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert history.grad_norms[-1] > 0.5  # recorded before clipping
    assert applied.item() <= 0.5 + 1e-5


def test_eval_runs_at_the_right_steps_in_eval_mode():
    model = TinyModel(TinyConfig(dropout=0.5)).eval()
    seen = []

    def evaluate(model):
        seen.append((model.training, torch.is_grad_enabled()))
        return {"val_loss": 1.0 / (len(seen)), "accuracy": 0.5}

    def loss_fn(model, batch):
        assert model.training
        return mse(model, batch)

    history = train(model, regression_batches(), loss_fn, steps=10, eval_fn=evaluate, eval_every=4, progress=False)
    assert history.eval_steps == [4, 8, 10]
    assert history.eval_metrics == {"val_loss": [1.0, 0.5, 1 / 3], "accuracy": [0.5, 0.5, 0.5]}
    assert seen == [(False, False)] * 3
    assert not model.training  # the caller's mode comes back

    plain = train(model, regression_batches(), mse, steps=3, eval_fn=lambda m: 2.5, progress=False)
    assert plain.eval_steps == [3] and plain.eval_metrics == {"eval": [2.5]}


def test_same_seed_same_history():
    def run(seed, scramble):
        torch.manual_seed(0)
        model = TinyModel(TinyConfig(dropout=0.2))
        torch.rand(scramble)  # whatever the global generator did before, train's seed decides

        def random_batch(step):  # dropout and these batches both draw from torch's global generator
            x = torch.randn(8, 4)
            return x, x.sum(-1)

        return train(model, random_batch, mse, steps=20, lr=1e-2, seed=seed, progress=False)

    a, b, other = run(123, scramble=1), run(123, scramble=7), run(124, scramble=1)
    assert a.train_loss == b.train_loss and a.grad_norms == b.grad_norms
    assert a.train_loss != other.train_loss


def test_progress_bar_shows_the_loss(capsys):
    train(TinyModel(TinyConfig()), regression_batches(), mse, steps=3, progress=True)
    err = capsys.readouterr().err
    assert "train: 100%" in err and "3/3" in err and "loss=" in err
    with pytest.raises(ValueError, match="eval_every=2 was given without an eval_fn"):
        train(TinyModel(TinyConfig()), regression_batches(), mse, steps=3, eval_every=2, progress=False)


def test_nan_loss_raises_naming_the_step():
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = mse(model, batch)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.raises(FloatingPointError, match=r"loss became nan at step 3 of 10"):
        train(TinyModel(TinyConfig()), regression_batches(), loss_fn, steps=10, progress=False)


def test_named_losses_log_every_and_a_one_shot_iterator():
    values = iter(range(1, 100))

    def loss_fn(model, batch):  # the logged parts are plain numbers we can check
        part = float(next(values))
        return {"loss": mse(model, batch) * 0 + part, "mlm": part, "nsp": torch.tensor(2 * part)}

    batches = iter(regression_batches(3))  # a generator-like iterator is cycled
    history = train(TinyModel(TinyConfig()), batches, loss_fn, steps=10, log_every=4, progress=False)
    assert history.steps == [4, 8, 10]
    assert history.train_loss == [2.5, 6.5, 9.5]
    assert history.extra_losses == {"mlm": [2.5, 6.5, 9.5], "nsp": [5.0, 13.0, 19.0]}
    assert json.loads(json.dumps(history.to_dict()))["extra_losses"]["nsp"] == [5.0, 13.0, 19.0]


def test_bad_batches_and_losses_get_clear_errors():
    model = TinyModel(TinyConfig())
    with pytest.raises(ValueError, match="batches is empty"):
        train(model, [], mse, steps=2, progress=False)
    with pytest.raises(ValueError, match="'loss' entry"):
        train(model, regression_batches(), lambda m, b: {"mlm": mse(m, b)}, steps=2, progress=False)
    with pytest.raises(ValueError, match=r"scalar tensor.*shape \(16,\)"):
        train(model, regression_batches(), lambda m, b: m(b[0]), steps=2, progress=False)


def test_history_plot_draws_train_and_eval_curves():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    history = History(
        steps=[1, 2, 3], train_loss=[3.0, 2.0, 1.0], extra_losses={"mlm": [2.0, 1.5, 0.5]},
        eval_steps=[3], eval_metrics={"val_loss": [1.2], "accuracy": [0.7]},
    )  # fmt: skip
    ax = history.plot()
    assert [line.get_label() for line in ax.lines] == ["train loss", "train mlm", "val_loss"]
    assert list(ax.lines[0].get_ydata()) == [3.0, 2.0, 1.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train loss", "train mlm", "val_loss", "accuracy"]
    matplotlib.pyplot.close("all")


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = TinyModel(TinyConfig(d_hidden=5, sizes=(3, 4)))
    out = save_checkpoint(model, tmp_path / "ckpt", metrics={"val_loss": torch.tensor(0.25)}, extra={"data": "toy"})
    assert out == tmp_path / "ckpt" / "model.safetensors"
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["model_class"] == "TinyModel" and meta["config"]["d_hidden"] == 5 and meta["extra"] == {"data": "toy"}
    assert read_metrics(tmp_path / "ckpt") == {"val_loss": 0.25}

    loaded = load_checkpoint(tmp_path / "ckpt", TinyModel)
    assert loaded.config == model.config  # the tuple field comes back as a tuple
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), model.eval()(x)) and not loaded.training

    fresh = TinyModel(TinyConfig(d_hidden=5, sizes=(3, 4)))
    assert load_checkpoint(tmp_path / "ckpt", model=fresh) is fresh
    assert torch.equal(fresh(x), model(x))


def test_tied_weights_survive_the_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TiedLM(TiedConfig())
    save_checkpoint(model, tmp_path / "lm.safetensors")
    assert (tmp_path / "lm.json").is_file()
    assert len(load_file(tmp_path / "lm.safetensors")) == 3  # one shared matrix + LayerNorm weight and bias

    loaded = load_checkpoint(tmp_path / "lm.safetensors")  # class found through register_model
    assert isinstance(loaded, TiedLM) and loaded.head.weight is loaded.emb.weight
    ids = torch.tensor([[1, 5, 10]])
    assert torch.equal(loaded(ids), model.eval()(ids))
    assert count_parameters(loaded) == 11 * 6 + 2 * 6


def test_config_mismatch_names_each_field_and_both_values(tmp_path):
    save_checkpoint(TinyModel(TinyConfig(d_hidden=8)), tmp_path)
    with pytest.raises(ValueError, match=r"d_hidden: checkpoint has 8, model has 16") as err:
        load_checkpoint(tmp_path, model=TinyModel(TinyConfig(d_hidden=16, dropout=0.1)))
    assert "dropout: checkpoint has 0.0, model has 0.1" in str(err.value)


def test_missing_unexpected_and_misshapen_tensors_are_named(tmp_path):
    class Other(nn.Module):  # no config: only the tensors are compared
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 3))
            self.extra = nn.Linear(2, 2)

    save_checkpoint(TinyModel(TinyConfig()), tmp_path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(tmp_path, model=Other())
    message = str(err.value)
    assert "model.safetensors" in message
    assert "tensor 'net.0.weight' has shape (8, 4) in the file but (3, 4) in the model" in message
    assert "missing tensor 'extra.weight'" in message and "unexpected tensor 'net.3.bias'" in message


def test_truncated_or_missing_files_raise_naming_the_file(tmp_path):
    save_checkpoint(TinyModel(TinyConfig()), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file"):
        load_checkpoint(tmp_path, TinyModel)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_checkpoint(tmp_path, TinyModel)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_checkpoint(tmp_path / "nowhere", TinyModel)
    (tmp_path / "config.json").write_text('{"model_class": "TinyMo')
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        read_metrics(tmp_path)


def test_unknown_model_class_asks_for_model_cls(tmp_path):
    class Unregistered(TinyModel):
        pass

    save_checkpoint(Unregistered(TinyConfig()), tmp_path)
    with pytest.raises(ValueError, match=r"unknown model class 'Unregistered'.*model_cls"):
        load_checkpoint(tmp_path)
    assert isinstance(load_checkpoint(tmp_path, TinyModel), TinyModel)


def test_count_parameters():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 3 * 2 + 2
    assert count_parameters(model) == 23


def test_adamw_decays_matrices_only_and_uses_the_fused_kernel_on_cpu():
    from lmbook.training import adamw

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = adamw(list(model.parameters()), lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [(4, 3)] and decay["weight_decay"] == 0.1
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    assert all(g["fused"] for g in opt.param_groups)
    # the same update as PyTorch's per-tensor AdamW, up to rounding
    twin = copy.deepcopy(model)
    rest = [twin[0].bias, *twin[1].parameters()]
    ref = torch.optim.AdamW([{"params": [twin[0].weight], "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3)  # fmt: skip
    x = torch.randn(5, 3)
    for m, o in ((model, opt), (twin, ref)):
        for _ in range(3):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
