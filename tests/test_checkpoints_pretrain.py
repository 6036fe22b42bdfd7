"""The shipped pretraining checkpoints still measure what their recipes recorded (Chapter 4).

Each test reloads a checkpoint from ``lmbook/checkpoints/``, re-evaluates it on the recipe's
fixed evaluation data (one thread, fixed seeds) and compares with ``metrics`` in its
``config.json``. Tolerances: perplexities and compression to 1e-3 relative; accuracies to
0.002 absolute (a count over ~9,000 MLM targets or 512 pairs, where an argmax may flip on a
CPU whose float rounding differs). Each metric must also beat its trivial baseline.
"""

import json
import shutil

import pytest
import torch

from lmbook import pretraining as P
from lmbook import pretraining_data as D
from lmbook.recipes import RECIPES, checkpoint_dir, load_pretrained, recipe_function
from lmbook.recipes import __main__ as cli
from lmbook.recipes import pretrain as R
from lmbook.training import read_metrics

torch.set_num_threads(1)
ACC_TOL = 2e-3


@pytest.fixture(scope="module")
def tokenizer():
    return load_pretrained("tokenizer-wiki")


@pytest.fixture(scope="module")
def train_ids(tokenizer):
    return D.train_token_ids(tokenizer)


@pytest.fixture(scope="module")
def eval_batches(tokenizer):
    return D.encoder_eval_batches(tokenizer)


def test_tokenizer_wiki_matches_its_metrics(tokenizer):
    metrics = json.loads((checkpoint_dir("tokenizer-wiki") / "metrics.json").read_text())
    assert tokenizer.vocab_size == metrics["vocab_size"] == D.VOCAB_SIZE
    val_text = "\n\n".join(D.wiki_split()[1])
    bytes_per_token = len(val_text.encode()) / len(tokenizer.encode(val_text))
    assert bytes_per_token == pytest.approx(metrics["val_bytes_per_token"], rel=1e-3)
    assert bytes_per_token > 3.0  # the byte-level baseline is 1 byte per token
    assert tokenizer.decode(tokenizer.encode(val_text)) == val_text


@pytest.mark.parametrize("name", ["encoder", "encoder-mlm-only"])
def test_encoder_matches_its_metrics_and_beats_unigram(name, eval_batches, train_ids):
    model, metrics = load_pretrained(name), read_metrics(checkpoint_dir(name))
    assert model.config.max_len == 256  # long enough for the QA fine-tuning of Chapter 5
    acc = P.mlm_accuracy(model, eval_batches)
    assert acc == pytest.approx(metrics["mlm_accuracy"], abs=ACC_TOL)
    baseline = P.unigram_mlm_baseline(train_ids, eval_batches)
    assert baseline == pytest.approx(metrics["unigram_mlm_accuracy"], abs=1e-9)
    assert acc > 1.5 * baseline  # shipped: about 2x (0.063 vs 0.031), ~13 standard errors above
    nsp = P.nsp_accuracy(model, eval_batches)
    assert nsp == pytest.approx(metrics["nsp_accuracy"], abs=ACC_TOL)
    if name == "encoder":  # the MLM-only model never trained its NSP head
        assert nsp > 0.5  # shipped: 0.547 on 512 pairs, two standard errors above chance: NSP is barely learned


def test_decoder_matches_its_metrics_and_beats_unigram(tokenizer, train_ids):
    model, metrics = load_pretrained("decoder"), read_metrics(checkpoint_dir("decoder"))
    val = D.decoder_eval_tokens(tokenizer)
    ppl = P.model_perplexity(model, val)
    assert ppl == pytest.approx(metrics["val_perplexity"], rel=1e-3)
    unigram = P.unigram_perplexity(train_ids, val[1:], tokenizer.vocab_size)
    assert unigram == pytest.approx(metrics["unigram_perplexity"], rel=1e-6)
    assert ppl < 0.5 * unigram < tokenizer.vocab_size


@pytest.mark.parametrize("name", ["encoder", "encoder-mlm-only", "decoder"])
def test_checkpoint_sizes_fit_the_budget(name):
    size = (checkpoint_dir(name) / "model.safetensors").stat().st_size
    assert size < 5.5e6, f"{name} weighs {size / 1e6:.1f} MB; the budget is ~5 MB per model"
    assert read_metrics(checkpoint_dir(name))["command"] == f"python -m lmbook.recipes {name}"


# ----------------------------------------------------------------------------- damaged or missing files
def test_truncated_weights_give_a_clear_error(tmp_path):
    folder = tmp_path / "encoder"
    shutil.copytree(checkpoint_dir("encoder"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_pretrained("encoder", path=folder)


def test_truncated_tokenizer_gives_a_clear_error(tmp_path):
    text = (checkpoint_dir("tokenizer-wiki") / "tokenizer.json").read_text()
    (tmp_path / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_pretrained("tokenizer-wiki", path=tmp_path)


def test_missing_checkpoint_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m lmbook.recipes decoder"):
        load_pretrained("decoder", path=tmp_path)


# ----------------------------------------------------------------------------- the registry and its command
def test_registry_names_and_errors():
    expected = {"tokenizer-wiki", "encoder", "decoder", "encoder-mlm-only", "classifier", "translator", "qa"}
    assert expected <= set(RECIPES)
    assert recipe_function("encoder") is R.encoder
    assert checkpoint_dir("decoder").name == "decoder" and checkpoint_dir("decoder").parent.name == "checkpoints"
    with pytest.raises(KeyError, match="available: tokenizer-wiki, encoder"):
        checkpoint_dir("gpt-5")


def test_command_lists_recipes_and_rejects_unknown_names(capsys):
    assert cli.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in RECIPES)
    assert cli.main(["gpt-5"]) == 2
    assert "unknown recipe 'gpt-5'; available: tokenizer-wiki" in capsys.readouterr().err
