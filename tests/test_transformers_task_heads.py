"""Parity with `transformers` for the fine-tuning heads, both directions."""

import numpy as np
import pytest

import keras_electra
from test_transformers_conversion import ATOL
from test_transformers_conversion import batch
from test_transformers_conversion import hf_config
from test_transformers_conversion import hf_model
from test_transformers_conversion import keras_backbone
from test_transformers_conversion import numpy
from test_transformers_conversion import random_weights
from test_transformers_conversion import real
from test_transformers_conversion import run_hf
from test_transformers_conversion import save

transformers = pytest.importorskip("transformers")


def classifier_outputs(model, inputs):
    return numpy(model(inputs))


def qa_outputs(model, inputs):
    out = model(inputs)
    return np.stack([numpy(out["start_logits"]), numpy(out["end_logits"])])


def hf_qa_outputs(out):
    return np.stack([out.start_logits.numpy(), out.end_logits.numpy()])


# (our class, transformers class, our outputs, theirs, per-token outputs)
HEADS = {
    "sequence-classification": (
        keras_electra.ElectraTextClassifier,
        "ElectraForSequenceClassification",
        classifier_outputs,
        lambda out: out.logits.numpy(),
        False,
    ),
    "token-classification": (
        keras_electra.ElectraTokenClassifier,
        "ElectraForTokenClassification",
        # Classes first, so that [..., real tokens] picks the tokens.
        lambda model, inputs: np.moveaxis(numpy(model(inputs)), -1, 0),
        lambda out: np.moveaxis(out.logits.numpy(), -1, 0),
        True,
    ),
    "question-answering": (
        keras_electra.ElectraQuestionAnswerer,
        "ElectraForQuestionAnswering",
        qa_outputs,
        hf_qa_outputs,
        True,
    ),
}


def largest_difference(ours, theirs, inputs, per_token):
    difference = np.abs(ours - theirs)
    if per_token:
        # Padding is not an answer and not a token to label: compare the
        # real tokens only (our QA head pushes padding to -1e9).
        difference = difference[..., real(inputs)]
    return difference.max()


@pytest.mark.parametrize("head", sorted(HEADS))
def test_load_task_head_from_transformers(tmp_path, head):
    cls, architecture, ours_fn, theirs_fn, per_token = HEADS[head]
    labels = {} if head == "question-answering" else {"num_labels": 3}
    reference = hf_model(architecture, hf_config(**labels))
    path = save(reference, tmp_path / "model")
    ours = cls.from_preset(path)
    if hasattr(ours, "num_classes"):
        assert ours.num_classes == 3
    inputs = batch()
    ours_out = ours_fn(ours, inputs)
    theirs_out = theirs_fn(run_hf(reference, inputs))
    assert largest_difference(ours_out, theirs_out, inputs, per_token) <= ATOL


@pytest.mark.parametrize("head", sorted(HEADS))
def test_export_task_head_to_transformers(tmp_path, head):
    cls, architecture, ours_fn, theirs_fn, per_token = HEADS[head]
    kwargs = {} if head == "question-answering" else {"num_classes": 3}
    model = random_weights(cls(keras_backbone(), **kwargs))
    keras_electra.export_to_transformers(model, tmp_path / "model")
    reference = getattr(transformers, architecture).from_pretrained(
        str(tmp_path / "model")
    ).eval()
    inputs = batch()
    ours_out = ours_fn(model, inputs)
    theirs_out = theirs_fn(run_hf(reference, inputs))
    assert largest_difference(ours_out, theirs_out, inputs, per_token) <= ATOL


def test_regression_classifier_roundtrip(tmp_path):
    model = random_weights(
        keras_electra.ElectraTextClassifier(keras_backbone(), num_classes=1)
    )
    keras_electra.export_to_transformers(model, tmp_path / "model")
    restored = keras_electra.ElectraTextClassifier.from_preset(
        str(tmp_path / "model")
    )
    assert restored.num_classes == 1
    inputs = batch()
    np.testing.assert_allclose(
        numpy(restored(inputs)), numpy(model(inputs)), atol=1e-6, rtol=0
    )


def test_original_head_has_no_transformers_counterpart(tmp_path):
    model = keras_electra.ElectraTextClassifier(
        keras_backbone(), num_classes=2, head="original"
    )
    with pytest.raises(ValueError, match="head='hf'"):
        keras_electra.export_to_transformers(model, tmp_path / "model")


def test_pretrainer_takes_special_ids_from_the_checkpoint_vocabulary(tmp_path):
    path = save(hf_model("ElectraForPreTraining", hf_config()), tmp_path / "d")
    vocabulary = ["[PAD]", "[UNK]", "[MASK]", "[CLS]", "[SEP]"]
    vocabulary += [f"w{i}" for i in range(128 - len(vocabulary))]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    # As transformers saves it: vocab.txt, tokenizer.json (HF's own format)
    # and tokenizer_config.json.
    transformers.BertTokenizerFast.from_pretrained(
        str(tmp_path)
    ).save_pretrained(path)
    pretrainer = keras_electra.ElectraPretrainer.from_preset(path)
    assert (pretrainer.mask_token_id, pretrainer.cls_token_id) == (2, 3)
    assert pretrainer.tokenizer.get_vocabulary() == vocabulary
