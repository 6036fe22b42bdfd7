"""Fine-tuning (Chapter 5): one module per section of the chapter.

=====================================  ==============================================  ==========================
section (notebook)                     module                                          recipe -> checkpoint
=====================================  ==============================================  ==========================
Text classification (05_finetuning)    ``lmbook.finetuning.classification``            ``classifier``
Machine translation (05b_translation)  ``lmbook.finetuning.translation``               ``translator``
Question answering (05c_question_...)  ``lmbook.finetuning.qa``, ``...qa_data``        ``qa``
all three: scores                      ``lmbook.finetuning.metrics``                   (none)
=====================================  ==============================================  ==========================

Everything the notebooks and tests use is re-exported here, so ``from lmbook.finetuning import best_span``
works as well as ``from lmbook.finetuning.qa import best_span``.
"""

from lmbook.finetuning.classification import (
    ClassifierConfig,
    SequenceClassifier,
    classification_batch,
    classification_loss,
    classifier_eval,
    encode_articles,
    freeze_encoder,
    mean_pool,
)
from lmbook.finetuning.metrics import (
    accuracy,
    confusion_matrix,
    corpus_bleu,
    exact_match,
    normalize_answer,
    qa_metrics,
    sequence_exact_match,
    token_f1,
)
from lmbook.finetuning.qa import (
    QAFeature,
    SpanQA,
    SpanQAConfig,
    baseline_answer,
    best_span,
    char_span_to_tokens,
    check_best_span,
    predict_answers,
    qa_batch,
    qa_eval_features,
    qa_features,
    span_loss,
    token_offsets,
)
from lmbook.finetuning.qa_data import QAExample, load_qa, qa_split_of
from lmbook.finetuning.translation import (
    alignment_eval,
    check_word_attention,
    cross_attention_alignment,
    load_translator,
    piece_to_word_attention,
    train_translation_tokenizer,
    translate,
    translation_batch,
    translation_pairs,
    translator_eval,
    word_pieces,
)

__all__ = [
    # classification
    "ClassifierConfig", "SequenceClassifier", "classification_batch", "classification_loss", "classifier_eval",
    "encode_articles", "freeze_encoder", "mean_pool",
    # translation
    "alignment_eval", "check_word_attention", "cross_attention_alignment", "load_translator",
    "piece_to_word_attention", "train_translation_tokenizer", "translate", "translation_batch", "translation_pairs",
    "translator_eval", "word_pieces",
    # question answering
    "QAExample", "QAFeature", "SpanQA", "SpanQAConfig", "baseline_answer", "best_span", "char_span_to_tokens",
    "check_best_span", "load_qa", "predict_answers", "qa_batch", "qa_eval_features", "qa_features", "qa_split_of",
    "span_loss", "token_offsets",
    # metrics
    "accuracy", "confusion_matrix", "corpus_bleu", "exact_match", "normalize_answer", "qa_metrics",
    "sequence_exact_match", "token_f1",
]  # fmt: skip
