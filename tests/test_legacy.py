"""What keras_electra 0.1 users have keeps working: presets it saved load and
give the same outputs, and its module paths still import (with a
`DeprecationWarning` naming the new path).

`fixtures/preset_v0_1/` was written by keras_electra 0.1 (the flat package,
commit 3f67ef3) on TensorFlow: a tiny pretrainer preset (both towers, the
tokenizer) and a text classifier saved from it, with `expected.npz` holding
their outputs on one packed batch.
"""

import importlib
import os
import sys

import keras
import numpy as np
import pytest

import keras_electra
from keras_electra.utils import legacy_paths

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "preset_v0_1")
BATCH = {
    "token_ids": np.array([[2, 5, 6, 7, 3, 0, 0, 0]], "int32"),
    "segment_ids": np.zeros((1, 8), "int32"),
    "padding_mask": np.array([[1] * 5 + [0] * 3], "int32"),
}


def expected(name):
    return np.load(os.path.join(FIXTURES, "expected.npz"))[name]


def test_a_0_1_pretrainer_preset_loads_with_its_weights():
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        os.path.join(FIXTURES, "pretrainer")
    )
    logits = keras.ops.convert_to_numpy(pretrainer.discriminator(BATCH))
    np.testing.assert_allclose(logits, expected("discriminator"), atol=1e-5)
    assert pretrainer.generator is not None
    assert pretrainer.tokenizer.vocabulary_size() == 32


def test_a_0_1_text_classifier_preset_loads_with_its_head():
    classifier = keras_electra.ElectraTextClassifier.from_preset(
        os.path.join(FIXTURES, "text_classifier")
    )
    logits = keras.ops.convert_to_numpy(classifier(BATCH))
    np.testing.assert_allclose(logits, expected("text_classifier"), atol=1e-5)
    assert classifier.preprocessor is not None


@pytest.mark.parametrize("old", sorted(legacy_paths.MOVED))
def test_old_module_paths_import_with_a_deprecation_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=legacy_paths.MOVED[old]):
        module = importlib.import_module(old)
    assert module is importlib.import_module(legacy_paths.MOVED[old])


def test_old_names_from_old_paths():
    sys.modules.pop("keras_electra.datasets", None)
    with pytest.warns(DeprecationWarning):
        from keras_electra.datasets import load_glue
        from keras_electra.electra_backbone import ElectraBackbone
    assert load_glue is keras_electra.load_glue
    assert ElectraBackbone is keras_electra.ElectraBackbone


def test_old_submodule_attributes_warn():
    # An import of the old path above sets the attribute on the package.
    vars(keras_electra).pop("pretraining_data", None)
    with pytest.warns(DeprecationWarning, match="keras_electra.pretraining"):
        module = keras_electra.pretraining_data
    assert module.train_vocabulary is keras_electra.train_vocabulary
    with pytest.raises(AttributeError, match="no_such_thing"):
        keras_electra.no_such_thing
