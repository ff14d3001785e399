"""What does a frozen encoder hold? Features and a linear probe.

A linear probe fits a logistic regression on an encoder's frozen features:
it measures what the representation holds before any fine-tuning. Next to
the same architecture at random initialisation it shows what pre-training
put in, even where fine-tuning on plenty of labels catches up from scratch
(benchmarks/RESULTS.md, "What the demo shows").
"""

import keras
import numpy as np

from keras_electra.models.electra_text_classifier import masked_mean


def encoder_features(backbone, preprocessor, texts, batch_size=256):
    """The frozen encoder's token vectors and their per-text means.

    Args:
        backbone: an `ElectraBackbone`.
        preprocessor: an `ElectraTextClassifierPreprocessor` for its
            vocabulary (called on batches of raw strings).
        texts: a list of strings.
        batch_size: texts encoded per call.

    Returns:
        `(token_vectors, mean_vectors)`: numpy arrays of shape
        `(tokens, hidden_dim)` (every non-padding token of every text, in
        order) and `(len(texts), hidden_dim)`.

    Example:
    ```python
    import keras_electra
    from keras_electra.pretraining.probing import encoder_features

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good"]
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
    )
    backbone = keras_electra.ElectraBackbone(
        vocab_size=6, num_layers=1, num_heads=1, hidden_dim=8,
        embedding_dim=8, intermediate_dim=16, max_sequence_length=8,
    )
    tokens, means = encoder_features(backbone, preprocessor, ["good good"])
    assert tokens.shape == (4, 8)  # [CLS] good good [SEP]
    assert means.shape == (1, 8)
    ```
    """
    texts = list(texts)
    if not texts:
        raise ValueError("`texts` is empty: there is nothing to encode.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    tokens, means = [], []
    for start in range(0, len(texts), batch_size):
        inputs = preprocessor(texts[start:start + batch_size])
        sequence = backbone(inputs)["sequence_output"]
        mask = keras.ops.convert_to_numpy(inputs["padding_mask"]).astype(bool)
        tokens.append(keras.ops.convert_to_numpy(sequence)[mask])
        means.append(
            keras.ops.convert_to_numpy(
                masked_mean(sequence, inputs["padding_mask"])
            )
        )
    return np.concatenate(tokens), np.concatenate(means)


def linear_probe(
    train_features,
    train_labels,
    eval_sets,
    l2=1e-3,
    learning_rate=1e-2,
    epochs=100,
    batch_size=256,
    seed=0,
):
    """Fits a logistic regression on frozen features; accuracy per set.

    Features are standardised with the training set's mean and standard
    deviation, then a softmax layer with an L2 penalty is fitted with Adam.

    Args:
        train_features: float array `(examples, features)`.
        train_labels: integer class ids `(examples,)`, from 0.
        eval_sets: dict of name to `(features, labels)` to score.
        l2: L2 penalty on the weights.
        learning_rate: Adam's learning rate.
        epochs: passes over the training set.
        batch_size: examples per step.
        seed: seed of the initialisation and the shuffling.

    Returns:
        A dict of name to accuracy (a float in [0, 1]) for each of
        `eval_sets`.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.probing import linear_probe

    features = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    labels = np.array([0, 0, 1, 1])
    accuracy = linear_probe(features, labels, {"train": (features, labels)})
    assert accuracy == {"train": 1.0}
    ```
    """
    train_features, train_labels = _checked("training", train_features, train_labels)
    if not eval_sets:
        raise ValueError("`eval_sets` is empty: name at least one set to score.")
    checked = {
        name: _checked(name, *features_and_labels)
        for name, features_and_labels in eval_sets.items()
    }
    width = train_features.shape[1]
    for name, (features, _) in checked.items():
        if features.shape[1] != width:
            raise ValueError(
                f"The {name!r} features have {features.shape[1]} columns, "
                f"the training features {width}."
            )
    num_classes = 1 + max(
        int(labels.max())
        for labels in [train_labels, *(labels for _, labels in checked.values())]
    )
    center = train_features.mean(0)
    scale = train_features.std(0) + 1e-6
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential(
        [
            keras.Input((width,)),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_regularizer=keras.regularizers.l2(l2),
            ),
        ]
    )
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    probe.fit(
        (train_features - center) / scale,
        train_labels,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
    )
    accuracies = {}
    for name, (features, labels) in checked.items():
        scores = probe.predict((features - center) / scale, verbose=0)
        accuracies[name] = float(np.mean(scores.argmax(-1) == labels))
    return accuracies


def _checked(name, features, labels):
    features = np.asarray(features, dtype="float32")
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(
            f"The {name} features must be a non-empty 2D array "
            f"(examples, features), got shape {features.shape}."
        )
    if labels.shape != (len(features),):
        raise ValueError(
            f"The {name} labels must have shape ({len(features)},), one per "
            f"row of features, got {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(
            f"The {name} labels must be class ids (integers from 0), got "
            f"{labels.dtype} values from {labels.min()}."
        )
    return features, labels.astype("int32")
