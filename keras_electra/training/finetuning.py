"""Fine-tuning a text classifier the paper's way, from a preset.

- `fine_tune_classifier(preset, splits, num_classes, score)`: the whole run
  (`recipes/finetune.py`, the demo and the benchmarks call it): load,
  compile with `electra_finetuning_optimizer`, train epoch by epoch with a
  dev evaluation after each, score the test split.
- `size_of(backbone)`: which size's paper hyperparameters fit a backbone.
- `reinitialize_top_layers(backbone, count)`: fresh random weights for the
  top transformer layers.
- `subset(split, size)`: a fixed random subset of a split.
- `classification_dataset(preprocessor, split, batch_size)`: a split as a
  preprocessed `tf.data.Dataset`.

A split is a dict of `texts` (strings, or `(first, second)` pairs) and
`labels` (a NumPy array), plus any other per-example lists.
"""

import time

import keras
import numpy as np

from keras_electra.models.electra_text_classifier import ElectraTextClassifier
from keras_electra.models.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)
from keras_electra.training.optimizers import FINETUNING_HYPERPARAMETERS
from keras_electra.training.optimizers import electra_finetuning_optimizer
from keras_electra.training.runs import jit_compile_option


def size_of(backbone):
    """The paper size whose fine-tuning hyperparameters suit `backbone`:
    `"small"` up to 256 hidden units, `"base"` up to 768, else `"large"`.

    Example:
    ```python
    import keras_electra
    from keras_electra.training.finetuning import size_of

    size_of(keras_electra.ElectraBackbone.from_preset("electra_tiny"))  # 'small'
    ```
    """
    if backbone.hidden_dim <= 256:
        return "small"
    return "base" if backbone.hidden_dim <= 768 else "large"


def reinitialize_top_layers(backbone, count):
    """Give the top `count` transformer layers of `backbone` fresh random
    weights (from the backbone's config; the global Keras seed applies).

    Args:
        backbone: an `ElectraBackbone`.
        count: int in `[1, number of layers]`.

    Example:
    ```python
    import keras_electra
    from keras_electra.training.finetuning import reinitialize_top_layers

    backbone = keras_electra.ElectraBackbone.from_preset(
        "electra_tiny", vocab_size=200
    )
    reinitialize_top_layers(backbone, 1)
    ```
    """
    layers = backbone.transformer_layers
    if not isinstance(count, int) or not 0 < count <= len(layers):
        raise ValueError(
            f"The count of layers to re-initialise (--reinitialize-layers) "
            f"must be in [1, {len(layers)}]; got {count!r}."
        )
    fresh = type(backbone).from_config(backbone.get_config())
    for layer, new in zip(layers[-count:], fresh.transformer_layers[-count:]):
        layer.set_weights(new.get_weights())


def subset(split, size):
    """`size` examples of a split, chosen at random (always the same ones),
    in their original order.

    Example:
    ```python
    import numpy as np
    from keras_electra.training.finetuning import subset

    split = {"texts": ["a", "b", "c", "d"], "labels": np.arange(4)}
    len(subset(split, 2)["texts"])  # 2
    ```
    """
    count = len(split["labels"])
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"`size` must be a positive integer; got {size!r}.")
    keep = np.sort(np.random.default_rng(0).permutation(count)[:size])
    return {
        name: np.asarray(values)[keep]
        if isinstance(values, np.ndarray)
        else [values[i] for i in keep]
        for name, values in split.items()
    }


def _text_features(texts):
    """Strings, or a tuple of two string lists for sentence pairs; `texts`
    a list, or a NumPy array (of shape `(n, 2)` for pairs)."""
    if len(texts) and isinstance(texts[0], (tuple, list, np.ndarray)):
        first, second = zip(*texts)
        return (list(first), list(second))
    return list(texts)


def classification_dataset(preprocessor, split, batch_size, shuffle_seed=None):
    """A split as batches of `(preprocessed features, labels)`.

    Args:
        preprocessor: an `ElectraTextClassifierPreprocessor`.
        split: a dict with `texts` and `labels`.
        batch_size: int.
        shuffle_seed: int or `None`. Shuffle (again every epoch) with this
            seed; `None` keeps the order.

    Returns:
        A `tf.data.Dataset`.

    Example:
    ```python
    import numpy as np
    import keras_electra
    from keras_electra.training.finetuning import classification_dataset

    tokenizer = keras_electra.ElectraTokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    )
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        tokenizer, sequence_length=8
    )
    split = {"texts": ["good", "bad"], "labels": np.array([1, 0])}
    features, labels = next(iter(classification_dataset(preprocessor, split, 2)))
    features["token_ids"].shape  # (2, 8)
    ```
    """
    import tensorflow as tf

    features = _text_features(split["texts"])
    dataset = tf.data.Dataset.from_tensor_slices((features, split["labels"]))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            len(split["labels"]), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    return (
        dataset.batch(batch_size)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _evaluate(classifier, dataset, labels, score):
    logits = classifier.predict(dataset, verbose=0)
    predictions = logits[:, 0] if logits.shape[-1] == 1 else logits
    return score(labels, predictions)


def _format_scores(scores):
    return ", ".join(f"{name} {value:.4f}" for name, value in scores.items())


def fine_tune_classifier(
    preset,
    splits,
    num_classes,
    score,
    *,
    task=None,
    from_scratch=False,
    size=None,
    learning_rate=None,
    layer_decay=None,
    epochs=None,
    batch_size=FINETUNING_HYPERPARAMETERS["batch_size"],
    warmup_fraction=FINETUNING_HYPERPARAMETERS["warmup_fraction"],
    max_sequence_length=128,
    reinitialize_layers=0,
    head="hf",
    pooling="cls",
    jit_compile="auto",
    seed=0,
    verbose=1,
):
    """Fine-tune an `ElectraTextClassifier` from `preset` and score it.

    The paper's recipe (Table 7): AdamW with layer-wise learning-rate decay,
    linear warmup then decay; the learning rate and the decay default to the
    paper's for `size` (by default `size_of` the backbone), the epochs to 10
    for RTE and STS-B and 3 otherwise. After every epoch the dev split is
    scored; at the end the test split too, when it has labels (all `>= 0`).
    Progress is printed.

    Args:
        preset: the preset to start from (a folder, a built-in name with a
            tokenizer, or a `transformers` checkpoint).
        splits: dict of `train`, `dev` and optionally `test` splits (dicts
            of `texts` and `labels`).
        num_classes: int; 1 for regression.
        score: callable `(labels, predictions) -> dict` of named scores;
            predictions are logits (a vector for regression).
        task: str or `None`. The task's name, for the GLUE epoch defaults and
            the result.
        from_scratch: bool. Same architecture and tokenizer, random weights.
        size: `"small"`, `"base"`, `"large"` or `None`.
        learning_rate, layer_decay: floats, or `None` for the paper's.
        epochs: int, or `None` for the paper's.
        batch_size, warmup_fraction, max_sequence_length: as the paper's
            fine-tuning uses them.
        reinitialize_layers: int. Re-initialise the top N transformer layers
            of the pre-trained encoder (ignored `from_scratch`).
        head, pooling: of `ElectraTextClassifier`.
        jit_compile: `"auto"`, `"true"` or `"false"`.
        seed: int. Seed of the weights and the shuffling.
        verbose: int. Keras `fit()` verbosity.

    Returns:
        `(classifier, scores)`: the trained classifier (its preprocessor
        attached) and a dict with the settings, the `history` of dev scores,
        `dev` (the last epoch's) and `test` where scored.

    Example:
    ```python
    import tempfile

    import numpy as np
    import keras_electra
    from keras_electra.training.finetuning import fine_tune_classifier

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    classifier = keras_electra.ElectraTextClassifier(
        keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=len(vocabulary), num_layers=1,
            max_sequence_length=8,
        ),
        num_classes=2,
        preprocessor=keras_electra.ElectraTextClassifierPreprocessor(
            keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
        ),
    )
    preset = tempfile.mkdtemp()
    classifier.save_to_preset(preset)
    split = {"texts": ["good", "bad"] * 4, "labels": np.array([1, 0] * 4)}

    def accuracy(labels, logits):
        return {"accuracy": float(np.mean(logits.argmax(-1) == labels))}

    _, scores = fine_tune_classifier(
        preset, {"train": split, "dev": split}, 2, accuracy,
        epochs=1, max_sequence_length=8, verbose=0,
    )
    sorted(scores["dev"])  # ['accuracy']
    ```
    """
    for name in ("train", "dev"):
        if name not in splits:
            raise ValueError(
                f"`splits` needs a '{name}' split; got {sorted(splits)}."
            )
    keras.utils.set_random_seed(seed)
    hyperparameters = FINETUNING_HYPERPARAMETERS
    epochs = epochs or hyperparameters["epochs"].get(
        task, hyperparameters["epochs"]["default"]
    )
    preprocessor = ElectraTextClassifierPreprocessor.from_preset(
        preset, sequence_length=max_sequence_length
    )
    classifier = ElectraTextClassifier.from_preset(
        preset,
        num_classes=num_classes,
        head=head,
        pooling=pooling,
        load_weights=not from_scratch,
        preprocessor=None,
    )
    if reinitialize_layers and not from_scratch:
        reinitialize_top_layers(classifier.backbone, reinitialize_layers)
    size = size or size_of(classifier.backbone)
    learning_rate = learning_rate or hyperparameters["learning_rate"][size]
    layer_decay = layer_decay or hyperparameters["layer_decay"][size]
    train_examples = len(splits["train"]["labels"])
    steps_per_epoch = -(-train_examples // batch_size)
    classifier.compile(
        optimizer=electra_finetuning_optimizer(
            classifier,
            learning_rate=learning_rate,
            total_steps=epochs * steps_per_epoch,
            layer_decay=layer_decay,
            warmup_fraction=warmup_fraction,
        ),
        jit_compile=jit_compile_option(jit_compile),
    )
    print(
        f"Fine-tuning {'a randomly initialised copy of ' if from_scratch else ''}"
        f"{preset} ({classifier.backbone.count_params():,} parameters) on "
        f"{task}: {train_examples:,} training examples, {epochs} epochs, "
        f"learning rate {learning_rate:g}, layer decay {layer_decay:g}, "
        f"backend {keras.config.backend()}.",
        flush=True,
    )
    train = classification_dataset(
        preprocessor, splits["train"], batch_size, shuffle_seed=seed
    )
    evaluation = {
        name: classification_dataset(preprocessor, split, 128)
        for name, split in splits.items()
        if name != "train"
    }
    history = []
    start = time.time()
    for epoch in range(epochs):
        classifier.fit(train, epochs=1, verbose=verbose)
        dev = _evaluate(
            classifier, evaluation["dev"], splits["dev"]["labels"], score
        )
        history.append({"epoch": epoch + 1, "dev": dev})
        print(f"epoch {epoch + 1}/{epochs} dev {_format_scores(dev)}", flush=True)
    scores = {
        "preset": preset,
        "from_scratch": from_scratch,
        "task": task,
        "backend": keras.config.backend(),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "layer_decay": layer_decay,
        "pooling": pooling,
        "reinitialized_layers": 0 if from_scratch else reinitialize_layers,
        "seed": seed,
        "train_examples": train_examples,
        "seconds": round(time.time() - start, 1),
        "history": history,
        "dev": history[-1]["dev"],
    }
    test = splits.get("test")
    if test is not None and np.all(np.asarray(test["labels"]) >= 0):
        scores["test"] = _evaluate(
            classifier, evaluation["test"], test["labels"], score
        )
        print(f"test {_format_scores(scores['test'])}", flush=True)
    classifier.preprocessor = preprocessor
    return classifier, scores
