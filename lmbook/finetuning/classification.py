"""Text classification: a pooled encoder state and one linear layer (book: sec-finetuning-classification;
source sections 2.2 and 3.3).

Pretraining (Chapter 4) leaves an encoder whose hidden states describe every token in context.
Fine-tuning puts a small *head* on top and trains on labelled examples: ``SequenceClassifier``
pools the states (BERT's ``[CLS]`` + dense + tanh, or the mean of the real tokens) and maps the
sentence vector to ``n_classes`` logits. ``freeze_encoder`` turns full fine-tuning into
"feature extraction": only the head learns. ``encode_articles`` and ``classifier_eval`` are the
fixed encoding and evaluation the ``classifier`` recipe and its drift test share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.checkpointing import register_model
from lmbook.data import pad_batch
from lmbook.finetuning.metrics import accuracy
from lmbook.models import Encoder, EncoderConfig
from lmbook.tokenizers import CLS_ID, PAD_ID, SEP_ID

__all__ = ["ClassifierConfig", "SequenceClassifier", "check_mean_pooling", "classification_batch",
           "classification_loss", "classifier_eval", "encode_articles", "freeze_encoder", "mean_pool"]  # fmt: skip


def _encoder_config(c) -> EncoderConfig:
    return c if isinstance(c, EncoderConfig) else EncoderConfig(**c)


@dataclass
class ClassifierConfig:
    """``SequenceClassifier``: the encoder's config (a dict on disk), the classes, the head's dropout and the
    pooling: ``"cls"`` (BERT: dense + tanh on the ``[CLS]`` state) or ``"mean"`` (mean of the real tokens)."""

    encoder: EncoderConfig | dict
    n_classes: int
    dropout: float = 0.1
    pooling: str = "cls"

    def __post_init__(self) -> None:
        self.encoder = _encoder_config(self.encoder)


@register_model
class SequenceClassifier(nn.Module):
    """Encoder + pooled ``[CLS]`` + linear head (book: sec-finetuning-classification; BERT's recipe).

    Build it from a (pretrained) encoder, ``SequenceClassifier(encoder, n_classes)``, or from a
    ``ClassifierConfig`` (a fresh encoder; that is what ``load_checkpoint`` does).
    """

    config_class = ClassifierConfig

    def __init__(self, encoder: Encoder | ClassifierConfig, n_classes: int | None = None, dropout: float = 0.1,
                 pooling: str = "cls"):  # fmt: skip
        super().__init__()
        if isinstance(encoder, ClassifierConfig):
            self.config, self.encoder = encoder, Encoder(encoder.encoder)
        else:
            if not isinstance(n_classes, int) or n_classes < 2:
                raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
            self.config, self.encoder = ClassifierConfig(encoder.config, n_classes, dropout, pooling), encoder
        if self.config.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.config.pooling!r}")
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(self.config.encoder.d_model, self.config.n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, *, need_weights: bool = False):
        """input_ids, attention_mask (B, T) -> logits (B, n_classes) [, attentions per layer (B, nh, T, T)]."""
        out = self.encoder(input_ids, attention_mask=attention_mask, need_weights=need_weights, compute_heads=False)
        logits = self.head(self.dropout(self.pool(out.hidden_states, attention_mask)))  # (B, n_classes)
        return (logits, out.attentions) if need_weights else logits


    def pool(self, hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(B, T, d) hidden states -> (B, d) sentence vector, as ``config.pooling`` says."""
        if self.config.pooling == "cls":
            return torch.tanh(self.encoder.pooler(hidden_states[:, 0]))  # the [CLS] token
        return mean_pool(hidden_states, attention_mask)


def mean_pool(hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """(B, T, d) token vectors -> (B, d): their mean over the real tokens (``attention_mask`` 1), padding left out."""
    if attention_mask is None:
        mask = torch.ones(hidden_states.shape[:2], dtype=hidden_states.dtype, device=hidden_states.device)
    else:
        mask = attention_mask.to(hidden_states.dtype)  # (B, T)
    return (hidden_states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def freeze_encoder(model: nn.Module, frozen: bool = True) -> int:
    """Stop (or restart) gradients into ``model.encoder``, so only the head learns; returns the trainable count."""
    if not isinstance(getattr(model, "encoder", None), nn.Module):
        raise ValueError(f"model must have an .encoder module to freeze, got {type(model).__name__}")
    for p in model.encoder.parameters():
        p.requires_grad_(not frozen)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def classification_loss(model: SequenceClassifier, batch: dict) -> Tensor:
    """Cross-entropy of the class logits, for ``lmbook.training.train``."""
    return F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])


def classification_batch(examples, tokenizer=None, max_len: int = 128) -> dict[str, Tensor]:
    """(text or token ids, label) pairs -> ``input_ids``/``attention_mask`` (B, T) and ``labels`` (B,).

    Text is encoded as ``[CLS] text [SEP]`` and cut to ``max_len`` tokens (the end of a long article is lost).
    """
    seqs = []
    for x, _ in examples:
        if isinstance(x, str):
            if tokenizer is None:
                raise ValueError("examples hold text, so a tokenizer is needed to encode it")
            x = [CLS_ID, *tokenizer.encode(x)[: max_len - 2], SEP_ID]
        seqs.append(list(x)[:max_len])
    ids, mask = pad_batch(seqs, PAD_ID)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in examples])}


# ----------------------------------------------------------------------------- extractive QA data


def encode_articles(tokenizer, examples, max_len: int) -> list[tuple[list[int], int]]:
    """(text, label) -> (``[CLS]`` first ``max_len - 2`` tokens ``[SEP]``, label); only the article's start is read."""
    return [([CLS_ID, *tokenizer.encode(text[: 12 * max_len])[: max_len - 2], SEP_ID], y) for text, y in examples]


@torch.no_grad()
def classifier_eval(model: SequenceClassifier, encoded, batch_size: int = 64) -> dict:
    """Accuracy and predictions of ``model`` (eval mode) on pre-encoded (ids, label) pairs."""
    model.eval()
    preds = []
    for i in range(0, len(encoded), batch_size):
        b = classification_batch(encoded[i : i + batch_size])
        preds += model(b["input_ids"], b["attention_mask"]).argmax(-1).tolist()
    return {"accuracy": accuracy(preds, [y for _, y in encoded]), "predictions": preds}


def check_mean_pooling(fn) -> str:
    """Exercise checker (Chapter 5): ``fn(hidden_states (B, T, d), attention_mask (B, T)) -> (B, d)``.

    Compares ``fn`` with ``SequenceClassifier.pool``'s mean pooling on padded batches and says
    what is wrong: a wrong shape, padding that leaks into the mean, or a sum instead of a mean.
    """
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    expected = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    out = fn(hidden, mask)
    if not isinstance(out, Tensor) or tuple(out.shape) != (3, 4):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"expected a tensor of shape (batch, d_model) = (3, 4), got {got}")
    noisy = hidden.clone()
    noisy[mask == 0] = 1e3  # padded positions must not matter
    if not torch.allclose(fn(noisy, mask), out, atol=1e-5):
        raise AssertionError("the padded positions change the result: multiply by the mask before summing")
    if torch.allclose(out, (hidden * mask[..., None]).sum(1), atol=1e-5):
        raise AssertionError("that is the sum of the token vectors: divide by the number of real tokens")
    if not torch.allclose(out, expected, atol=1e-5):
        raise AssertionError("the mean is off: divide by the number of real tokens of each row (mask.sum(1))")
    return "mean pooling is correct: padding ignored, divided by each row's real length"
