"""Every input path of every model: `fit`, `evaluate` and `predict` take what
`keras.Model` takes (NumPy arrays, `tf.data`, Python generators,
`keras.utils.PyDataset`, and raw strings through a preprocessor), give the
same answers whatever the path, and refuse bad inputs (token ids outside the
vocabulary, sequences longer than the position table, labels outside the
classes) with the same `ValueError` text on every path, before any gradient
step.
"""

import warnings

import keras
import numpy as np
import pytest

import keras_electra
from conftest import VOCAB_SIZE, numpy_tree, tiny_backbone, tiny_batch
from conftest import tiny_pretrainer
from keras_electra.utils.checks import INPUT_ERROR
from keras_electra.utils.checks import is_tf_dataset
from keras_electra.utils.checks import row_batches
from keras_electra.utils.checks import untuned

KINDS = ("arrays", "tf.data", "generator", "PyDataset")
BATCH_SIZE = 4
ROWS = 8
LENGTH = 24  # TINY's max_sequence_length is 32.


# === Models, each with a good batch `(x, y)` of ROWS rows ===


def _classifier():
    return keras_electra.ElectraTextClassifier(tiny_backbone(), num_classes=3)


def _token_classifier():
    return keras_electra.ElectraTokenClassifier(tiny_backbone(), num_classes=3)


def _question_answerer():
    return keras_electra.ElectraQuestionAnswerer(tiny_backbone())


def _discriminator():
    return keras_electra.ElectraDiscriminator(tiny_backbone())


def _generator():
    return keras_electra.ElectraGenerator(tiny_backbone())


MODELS = {
    "text classifier": (_classifier, lambda x: np.arange(ROWS) % 3),
    "token classifier": (
        _token_classifier, lambda x: x["token_ids"] % 3
    ),
    "question answerer": (
        _question_answerer,
        lambda x: {
            "start_positions": np.arange(ROWS) % 4,
            "end_positions": np.arange(ROWS) % 4 + 2,
        },
    ),
    "discriminator": (
        _discriminator, lambda x: (x["token_ids"] % 2).astype("float32")
    ),
    "generator": (
        _generator, lambda x: np.take_along_axis(
            x["token_ids"], x["mask_positions"], axis=1
        ),
    ),
    "pretrainer": (tiny_pretrainer, lambda x: None),
}
# Models whose labels are class indices, and a label outside the classes.
BAD_LABELS = {
    "text classifier": ("[0, 3)", 5),
    "token classifier": ("[0, 3)", 3),
    "generator": (f"[0, {VOCAB_SIZE})", VOCAB_SIZE + 1),
}


def good_x(model_name, length=LENGTH):
    x = tiny_batch(batch_size=ROWS, length=length)
    if model_name == "generator":
        x["mask_positions"] = np.tile(np.array([[1, 3, 5]], "int32"), (ROWS, 1))
    return x


def compiled(model_name):
    model = MODELS[model_name][0]()
    model.compile(jit_compile=False)  # Nothing worth compiling: faster.
    return model


def seeded_model_and_batch(model_name):
    """A freshly seeded compiled model and its good batch `(x, y)`."""
    keras.utils.set_random_seed(0)
    model = compiled(model_name)
    x = good_x(model_name)
    return model, x, MODELS[model_name][1](x)


@pytest.fixture(scope="module")
def models():
    """One compiled model per name, shared by the module's tests (a bad
    input trains nothing; the good-input test trains a copy)."""
    keras.utils.set_random_seed(0)
    return {name: compiled(name) for name in MODELS}


# === Inputs of every kind ===


class Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def split(x, y):
    """`(x,)` or `(x, y)` batches of BATCH_SIZE rows."""
    batches = []
    for start in range(0, ROWS, BATCH_SIZE):
        rows = slice(start, start + BATCH_SIZE)
        pair = (x,) if y is None else (x, y)
        batches.append(keras.tree.map_structure(lambda a: a[rows], pair))
    return batches


def as_kind(kind, x, y=None):
    """`(x, y, extra fit arguments)` of `kind` holding the batch `(x, y)`."""
    if kind == "arrays":
        return x, y, {"batch_size": BATCH_SIZE}
    if kind == "tf.data":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
        return data.batch(BATCH_SIZE), None, {}
    batches = split(x, y)
    if kind == "generator":
        return (batch for batch in batches), None, {}
    return Batches(batches), None, {}


def run(model, method, kind, x, y=None):
    if method == "predict":
        y = None
    data, labels, extra = as_kind(kind, x, y)
    if method == "predict":
        return getattr(model, method)(data, verbose=0, **extra)
    return getattr(model, method)(data, labels, verbose=0, **extra)


def weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


# With `tf.data` on TensorFlow the bad batch is read inside the compiled
# step, after ops that do not depend on it (AdamW's weight decay, a 1e-6
# relative change); no gradient step (about 1e-4 here) is taken.
NO_GRADIENT_STEP = 1e-5


def refusals(model, methods, x, y):
    """`{(method, kind): ValueError text}` of every refused call; asserts
    that nothing was trained."""
    found = {}
    for method in methods:
        for kind in KINDS:
            before = weights(model)
            with pytest.raises(ValueError) as error:
                run(model, method, kind, x, y)
            found[method, kind] = str(error.value)
            for old, new in zip(before, weights(model)):
                np.testing.assert_allclose(new, old, rtol=NO_GRADIENT_STEP)
    return found


def assert_one_text(found, expected):
    texts = set(found.values())
    assert len(texts) == 1, found  # The same text on every path.
    (text,) = texts
    assert text.startswith(INPUT_ERROR) and expected in text, text


# === Bad inputs: one text on every path ===


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_token_ids_outside_the_vocabulary_on_every_path(models, model_name):
    model = models[model_name]
    x = good_x(model_name)
    y = MODELS[model_name][1](x)
    x["token_ids"][1, 2] = VOCAB_SIZE + 3  # In the first batch.
    found = refusals(model, ("fit", "evaluate", "predict"), x, y)
    assert_one_text(found, f"[0, {VOCAB_SIZE})")
    assert f"to {VOCAB_SIZE + 3}." in next(iter(found.values()))


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_sequences_too_long_on_every_path(models, model_name):
    model = models[model_name]
    x = good_x(model_name, length=40)
    y = MODELS[model_name][1](x)
    found = refusals(model, ("fit", "evaluate", "predict"), x, y)
    assert_one_text(
        found,
        "sequences of length 40 exceed the model's `max_sequence_length` (32)",
    )


@pytest.mark.parametrize("model_name", sorted(BAD_LABELS))
def test_labels_outside_the_classes_on_every_path(models, model_name):
    model = models[model_name]
    x = good_x(model_name)
    y = np.array(MODELS[model_name][1](x))
    classes, bad = BAD_LABELS[model_name]
    y.flat[1] = bad  # In the first batch.
    found = refusals(model, ("fit", "evaluate"), x, y)
    assert_one_text(found, classes)
    assert f"found {bad}." in next(iter(found.values()))


# === Good inputs: the same answers on every path ===


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_every_path_trains_evaluates_and_predicts_alike(model_name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trains_evaluates_and_predicts_alike(model_name)
    # Nothing to warn about on any path (Keras' own default `shuffle=True`
    # warned on every stream, its default `build` on the pretrainer, its
    # optimizers of the unused pooler). Keras' own, as for any
    # `keras.Model`: "ran out of data" at the end of a generator (of
    # unknown length), and a DeprecationWarning from `Variable.__array__`
    # (the test's weight reads).
    assert [
        str(warning.message) for warning in caught
        if not issubclass(warning.category, DeprecationWarning)
        and not str(warning.message).startswith("Your input ran out of data")
    ] == []


@pytest.mark.parametrize(
    "model_name", sorted(set(MODELS) - {"pretrainer"})
)
def test_packed_arrays_go_straight_to_keras(model_name, monkeypatch):
    # keras-hub's `tf.data` pipeline would only copy them (and its threads
    # cost up to a second a `predict` call on 2 cores).
    from keras_hub.src.utils import pipeline_model

    def refuse(*args, **kwargs):
        raise AssertionError("keras-hub's pipeline built a dataset")

    monkeypatch.setattr(pipeline_model, "_build_dataset", refuse)
    model, x, y = seeded_model_and_batch(model_name)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=2, verbose=0)
    model.evaluate(x, y, batch_size=BATCH_SIZE, verbose=0)
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
        numpy_tree(model.predict(x, batch_size=BATCH_SIZE, verbose=0)),
        numpy_tree(model(x, training=False)),
    )


def keras_inputs_of(methods, monkeypatch):
    """The `x` that each call of `keras.Model`'s `methods` receives."""
    seen = []
    for method in methods:
        original = getattr(keras.Model, method)

        def spy(self, x=None, *args, _original=original, **kwargs):
            seen.append(x)
            return _original(self, x, *args, **kwargs)

        monkeypatch.setattr(keras.Model, method, spy)
    return seen


def is_untuned(x):
    return is_tf_dataset(x) and x.options().autotune.enabled is False


def assert_arrays_untuned_on_tensorflow_only(inputs):
    # Deleting an iterator over an autotuned `tf.data` pipeline (Keras' for
    # arrays on TensorFlow) waits out its autotuning thread's pause, up to a
    # minute, at the end of `fit`, `evaluate` and `predict`
    # (benchmarks/RESULTS.md); the other backends read arrays as arrays.
    assert inputs
    for x in inputs:
        assert is_untuned(x) == (keras.config.backend() == "tensorflow")


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_arrays_are_read_untuned_on_tensorflow(model_name, monkeypatch):
    inputs = keras_inputs_of(("fit", "evaluate", "predict"), monkeypatch)
    model, x, y = seeded_model_and_batch(model_name)
    model.fit(x, y, batch_size=3, validation_split=0.25, verbose=0)
    model.evaluate(x, y, batch_size=3, verbose=0)
    predictions = model.predict(x, 3, 0)  # Keras' positional arguments.
    assert len(inputs) == 4  # `fit` evaluates its validation data.
    assert_arrays_untuned_on_tensorflow_only(inputs)
    keras.tree.map_structure(
        lambda a: np.testing.assert_equal(len(a), ROWS),
        numpy_tree(predictions),
    )


@pytest.mark.parametrize("model_name", ["text classifier", "pretrainer"])
def test_datasets_are_read_untuned_on_every_backend(model_name, monkeypatch):
    import tensorflow as tf

    inputs = keras_inputs_of(("fit", "evaluate", "predict"), monkeypatch)
    model, x, y = seeded_model_and_batch(model_name)
    rows = x if y is None else (x, y)
    dataset = tf.data.Dataset.from_tensor_slices(rows).batch(BATCH_SIZE)
    model.fit(dataset, validation_data=dataset, verbose=0)
    model.evaluate(dataset, verbose=0)
    model.predict(dataset.map(lambda x, *_: x), verbose=0)
    assert len(inputs) == 4  # `fit` evaluates its validation data.
    assert all(is_untuned(x) for x in inputs)


def test_untuned_keeps_an_explicit_choice():
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = True
    tuned = tf.data.Dataset.range(4).with_options(options)
    assert untuned(tuned).options().autotune.enabled is True
    assert untuned(tf.data.Dataset.range(4)).options().autotune.enabled is False


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="Only TensorFlow's Keras reads arrays through tf.data; elsewhere "
    "they pass unchanged (test_arrays_are_read_untuned_on_tensorflow).",
)
def test_arrays_train_as_keras_trains_them():
    # Keras' own pipeline for arrays, untuned: the same batches, the same
    # validation rows, the same weights after `fit`.
    x = good_x("text classifier")
    y = MODELS["text classifier"][1](x)
    weights_after, validation_losses = [], []
    for fit in (keras.Model.fit, keras_electra.ElectraTextClassifier.fit):
        keras.utils.set_random_seed(0)
        model = compiled("text classifier")
        history = fit(
            model, x, y, batch_size=3, epochs=2, shuffle=False,
            validation_split=0.25, sample_weight=np.arange(ROWS) / ROWS,
            verbose=0,
        )
        validation_losses.append(history.history["val_loss"])
        weights_after.append(weights(model))
    np.testing.assert_allclose(*validation_losses, rtol=1e-5)
    for a, b in zip(*weights_after):
        np.testing.assert_allclose(a, b, atol=1e-6)


def trains_evaluates_and_predicts_alike(model_name):
    model, x, y = seeded_model_and_batch(model_name)
    # The pretrainer masks and samples anew on every call: same shapes.
    same = np.testing.assert_allclose
    if model_name == "pretrainer":
        same = lambda a, b, **_: np.testing.assert_equal(a.shape, b.shape)
    predictions = {kind: run(model, "predict", kind, x) for kind in KINDS}
    for kind in KINDS[1:]:
        keras.tree.map_structure(
            lambda a, b: same(a, b, atol=1e-5),
            numpy_tree(predictions["arrays"]),
            numpy_tree(predictions[kind]),
        )
    losses = {}
    for kind in KINDS:
        result = run(model, "evaluate", kind, x, y)
        losses[kind] = np.ravel(result)[:1]
    for kind in KINDS[1:]:
        same(losses[kind], losses["arrays"], rtol=1e-4)
    for kind in KINDS:
        before = weights(model)
        history = run(model, "fit", kind, x, y)
        assert np.isfinite(history.history["loss"]).all()
        assert any(
            not np.array_equal(a, b) for a, b in zip(before, weights(model))
        ), kind


def test_arrays_are_shuffled_every_epoch_and_split_as_in_keras():
    # keras-hub's `Task.fit` batches arrays in order; ours, as
    # `keras.Model.fit(shuffle=True)`, in a new order every epoch.
    x = {"token_ids": np.arange(40).reshape(20, 2)}
    y = np.arange(20)
    kwargs = {"batch_size": 4, "sample_weight": np.ones(20),
              "validation_split": 0.25, "epochs": 2}
    batches = row_batches(x, y, kwargs, shuffle=True, split=True)
    assert kwargs.keys() == {"epochs", "validation_data"}

    def labels_of(dataset):
        return [int(label) for _, labels, _ in dataset for label in labels]

    first, second = labels_of(batches), labels_of(batches)
    assert first != second and first != sorted(first)
    assert sorted(first) == sorted(second) == list(range(15))
    assert labels_of(kwargs["validation_data"]) == list(range(15, 20))
    for batch_x, labels, _ in batches:
        np.testing.assert_array_equal(
            batch_x["token_ids"][:, 0], 2 * labels.numpy()
        )


# === Raw strings through a preprocessor ===

WORDS = "the a cat dog sat ran on mat .".split()
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
TEXTS = np.array(
    ["the cat sat .", "a dog ran .", "the dog sat on the mat .", "a cat ."] * 2
)


def text_classifier():
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True),
        sequence_length=12,
    )
    model = keras_electra.ElectraTextClassifier(
        tiny_backbone(vocab_size=len(VOCABULARY)),
        num_classes=2,
        preprocessor=preprocessor,
    )
    model.compile(jit_compile=False)
    return model


# Keras warns whenever `predict` reads a Python generator to its end (a
# plain `keras.Sequential` too): expected here, where the generator is
# finite.
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_raw_strings_on_every_path():
    keras.utils.set_random_seed(0)
    model = text_classifier()
    labels = np.arange(ROWS) % 2
    predictions = [run(model, "predict", kind, TEXTS) for kind in KINDS]
    for other in predictions[1:]:
        np.testing.assert_allclose(other, predictions[0], atol=1e-5)
    for kind in KINDS:
        history = run(model, "fit", kind, TEXTS, labels)
        assert np.isfinite(history.history["loss"]).all()
    labels[1] = 2
    found = refusals(model, ("fit", "evaluate"), TEXTS, labels)
    assert_one_text(found, "[0, 2)")
    assert "found 2." in next(iter(found.values()))


def test_strings_are_read_untuned_on_every_backend(monkeypatch):
    # keras-hub reads strings through `tf.data` on every backend.
    inputs = keras_inputs_of(("fit", "evaluate", "predict"), monkeypatch)
    keras.utils.set_random_seed(0)
    model = text_classifier()
    expected = model.predict(TEXTS, batch_size=ROWS, verbose=0)
    inputs.clear()
    labels = np.arange(ROWS) % 2
    model.evaluate(TEXTS, labels, batch_size=3, verbose=0)
    predictions = model.predict(TEXTS, batch_size=3, verbose=0)
    model.fit(TEXTS, labels, batch_size=3, validation_split=0.25, verbose=0)
    assert len(inputs) == 4  # `fit` evaluates its validation data.
    assert all(is_untuned(x) for x in inputs)
    np.testing.assert_allclose(predictions, expected, atol=1e-5)
