"""Task models out to serving formats: a TensorFlow SavedModel on raw
strings, and ONNX on token ids."""

import os
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_electra.models.electra_question_answerer import ElectraQuestionAnswerer
from keras_electra.models.electra_text_classifier import ElectraTextClassifier
from keras_electra.models.electra_text_classifier import check_preprocessor
from keras_electra.models.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)
from keras_electra.models.electra_token_classifier import ElectraTokenClassifier
from keras_electra.utils.file_io import replace_directory
from keras_electra.utils.file_io import staging_directory
from keras_electra.utils.file_io import write_json

FORMATS = ("tf_saved_model", "onnx")
TASKS = {
    cls.__name__: cls
    for cls in (
        ElectraTextClassifier,
        ElectraTokenClassifier,
        ElectraQuestionAnswerer,
    )
}
ONNX_FILE = "model.onnx"
VOCABULARY_FILE = "vocab.txt"
CONFIG_FILE = "serving_config.json"
INPUTS = ("token_ids", "segment_ids", "padding_mask")
# What a WordPiece tokenizer outside Keras needs to match ours.
TOKENIZER_SETTINGS = (
    "lowercase",
    "strip_accents",
    "split",
    "suffix_indicator",
    "oov_token",
    "special_tokens_in_strings",
)
# The ONNX export fails rather than write a model that disagrees with the
# Keras one by more than this (float32 probabilities).
ONNX_TOLERANCE = 1e-5


def export_for_serving(task, path, format="tf_saved_model"):
    """Export a fine-tuned task model for serving without Keras.

    `format="tf_saved_model"` writes one SavedModel holding the tokenizer,
    the packer and the model. It runs wherever TensorFlow runs with the
    TensorFlow Text ops the tokenizer uses (`import tensorflow_text`
    registers them); Keras and keras_electra are not needed. Its
    signatures take batches of raw strings (1-D `tf.string`) and return
    float32 probabilities:

    - `ElectraTextClassifier`: `serving_default(text)` and
      `serving_pairs(text, text_pair)` give `probabilities`
      `(batch, num_classes)`, the softmax of the logits (`scores`
      `(batch, 1)` for a regression model, `num_classes=1`).
    - `ElectraTokenClassifier`: `serving_default(text)` gives
      `probabilities` `(batch, sequence_length, num_classes)` and, to map
      them onto the text, the packed `token_ids`, `segment_ids`,
      `padding_mask` and the word pieces as `tokens`.
    - `ElectraQuestionAnswerer`: `serving_default(question, context)` gives
      `start_probabilities` and `end_probabilities`
      `(batch, sequence_length)` (zero on padding) and the same four.

    `format="onnx"` writes `model.onnx`, the model on packed
    `token_ids`, `segment_ids` and `padding_mask` (int32,
    `(batch, length)`, as the preprocessor packs them) with the outputs
    above less the strings and echoed inputs, and beside it the
    tokenizer (ONNX has no WordPiece): `vocab.txt` and
    `serving_config.json` (casing, sequence length, truncation, special
    token ids, the segment layout, the inputs and outputs). The export
    runs the ONNX model in `onnxruntime` on a sample batch and raises a
    `RuntimeError` if it disagrees with the Keras model.

    Both formats trace the model with TensorFlow: on the TensorFlow backend
    in this process; on JAX and PyTorch the task is saved to a temporary
    preset (weights do not depend on the backend) and exported by a Python
    subprocess on the TensorFlow backend. That one route serves every
    backend and format alike: Keras' own `export` puts a model in a
    TensorFlow graph beside the string ops only from TensorFlow and (with
    jax2tf) JAX, and converts to ONNX with a different tool per backend.
    The artefact is written to a staging folder beside `path` and moved
    into place when complete.

    The task needs an `ElectraTextClassifierPreprocessor` as its
    `preprocessor`: a token classifier or question answerer gets one by
    assignment (`task.preprocessor = ...`; then `predict` takes strings,
    pairs for the question answerer). Needs `tensorflow`, and for ONNX
    `tf2onnx` and `onnxruntime` (`pip install keras-electra[serving]`).

    Args:
        task: `ElectraTextClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswerer` with a preprocessor.
        path: the folder to write; it must not exist or be empty.
        format: `"tf_saved_model"` or `"onnx"`.

    Example:
    ```python
    import os
    import tempfile

    import keras_electra
    import tensorflow as tf

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat"]
    classifier = keras_electra.ElectraTextClassifier(
        keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=len(vocabulary), num_layers=1
        ),
        num_classes=2,
        preprocessor=keras_electra.ElectraTextClassifierPreprocessor(
            keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
        ),
    )
    path = os.path.join(tempfile.mkdtemp(), "classifier")
    keras_electra.export_for_serving(classifier, path)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(text=tf.constant(["a cat", "a"]))["probabilities"].shape  # (2, 2)
    ```
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}, got {format!r}.")
    check_task(task)
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not (
        os.path.isdir(path) and not os.listdir(path)
    ):
        raise ValueError(
            f"'{path}' exists and is not an empty folder: not overwriting "
            "it. Export to a new or empty folder."
        )
    _check_installed(format)
    staging = staging_directory(
        os.path.dirname(path), f".{os.path.basename(path)}."
    )
    try:
        if keras.config.backend() == "tensorflow":
            _write(task, task.preprocessor, staging, format)
        else:
            _write_with_tensorflow(task, staging, format)
        replace_directory(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_task(task):
    """Raise a `ValueError` unless `export_for_serving` can export `task`."""
    if not isinstance(task, tuple(TASKS.values())):
        raise ValueError(
            f"`task` must be one of {sorted(TASKS)}; got "
            f"{type(task).__name__}."
        )
    preprocessor = task.preprocessor
    if not isinstance(preprocessor, ElectraTextClassifierPreprocessor):
        raise ValueError(
            f"The {type(task).__name__} has no "
            "ElectraTextClassifierPreprocessor as `preprocessor` (it has "
            f"{type(preprocessor).__name__}): serving needs its tokenizer "
            "and sequence length. Set `task.preprocessor = "
            "keras_electra.ElectraTextClassifierPreprocessor(tokenizer, "
            "sequence_length=...)` first."
        )
    check_preprocessor(preprocessor, task.backbone)


def _check_installed(format):
    import importlib.util

    needed = ["tensorflow"]
    if format == "onnx":
        needed += ["tf2onnx", "onnxruntime"]
    missing = [name for name in needed if not importlib.util.find_spec(name)]
    if missing:
        raise ImportError(
            f"Exporting to {format!r} needs {', '.join(missing)}: "
            "`pip install keras-electra[serving]`."
        )


def _write_with_tensorflow(task, directory, format):
    """Export `task` from a subprocess on the TensorFlow backend."""
    with tempfile.TemporaryDirectory() as preset:
        task.save_to_preset(preset)
        code = (
            "import sys; from keras_electra.conversion import serving; "
            "serving._write_preset(*sys.argv[1:])"
        )
        environment = {
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        }
        result = subprocess.run(
            [sys.executable, "-c", code, type(task).__name__, preset,
             directory, format],
            env=environment,
            capture_output=True,
            text=True,
        )
    if result.returncode:
        raise RuntimeError(
            f"Exporting on the TensorFlow backend failed:\n{result.stderr}"
        )


def _write_preset(task_name, preset, directory, format):
    """The subprocess' side of `_write_with_tensorflow`."""
    task = TASKS[task_name].from_preset(preset, compile=False)
    preprocessor = ElectraTextClassifierPreprocessor.from_preset(preset)
    _write(task, preprocessor, directory, format)


def _write(task, preprocessor, directory, format):
    # Keras' and TensorFlow's export chatter (absl INFO/WARNING) off.
    import absl.logging

    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)
    try:
        if format == "tf_saved_model":
            _write_saved_model(task, preprocessor, directory)
        else:
            _write_onnx(task, preprocessor, directory)
    finally:
        absl.logging.set_verbosity(verbosity)


def _probabilities(task, predictions):
    """The float32 outputs of both formats, from the task's predictions."""
    softmax = keras.ops.softmax
    if isinstance(task, ElectraQuestionAnswerer):
        return {
            "start_probabilities": softmax(predictions["start_logits"]),
            "end_probabilities": softmax(predictions["end_logits"]),
        }
    predictions = keras.ops.cast(predictions, "float32")
    if isinstance(task, ElectraTextClassifier) and task.num_classes == 1:
        return {"scores": predictions}
    return {"probabilities": softmax(predictions)}


def _write_saved_model(task, preprocessor, directory):
    import tensorflow as tf

    vocabulary = tf.constant(preprocessor.tokenizer.get_vocabulary())
    token_level = not isinstance(task, ElectraTextClassifier)

    def serve(segments):
        x = preprocessor(x=segments)
        outputs = _probabilities(task, task(x, training=False))
        if token_level:
            for name in INPUTS:
                outputs[name] = tf.cast(x[name], tf.int32)
            outputs["tokens"] = tf.gather(vocabulary, x["token_ids"])
        return outputs

    def text(text):
        return serve(text)

    def text_pair(text, text_pair):
        return serve((text, text_pair))

    def question_context(question, context):
        return serve((question, context))

    # Name: (function, its inputs' names in the signature).
    endpoints = {"serving_default": (text, ["text"])}
    if isinstance(task, ElectraTextClassifier):
        endpoints["serving_pairs"] = (text_pair, ["text", "text_pair"])
    elif isinstance(task, ElectraQuestionAnswerer):
        endpoints["serving_default"] = (
            question_context,
            ["question", "context"],
        )
    signatures = {}
    for name, (function, inputs) in endpoints.items():
        specs = [tf.TensorSpec([None], tf.string, name=n) for n in inputs]
        signatures[name] = tf.function(
            function, autograph=False
        ).get_concrete_function(*specs)
    # The module holds the variables; each signature is traced once (Keras'
    # `ExportArchive` traces twice, which doubles the export time).
    module = tf.Module()
    module.task = task
    tf.saved_model.save(module, directory, signatures=signatures)


def _write_onnx(task, preprocessor, directory):
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUTS]

    @tf.function(input_signature=signature, autograph=False)
    def probabilities(token_ids, segment_ids, padding_mask):
        x = dict(zip(INPUTS, (token_ids, segment_ids, padding_mask)))
        return _probabilities(task, task(x, training=False))

    model_path = os.path.join(directory, ONNX_FILE)
    tf2onnx.convert.from_function(
        probabilities,
        signature,
        custom_op_handlers={"Erfc": (_erfc_as_erf, [])},
        output_path=model_path,
    )
    outputs = _check_onnx(model_path, probabilities, preprocessor)
    tokenizer = preprocessor.tokenizer
    with open(
        os.path.join(directory, VOCABULARY_FILE), "w", encoding="utf-8"
    ) as file:
        file.writelines(f"{token}\n" for token in tokenizer.get_vocabulary())
    settings = tokenizer.get_config()
    write_json(
        os.path.join(directory, CONFIG_FILE),
        {
            "task": type(task).__name__,
            "vocabulary": VOCABULARY_FILE,
            **{key: settings[key] for key in TOKENIZER_SETTINGS},
            "sequence_length": preprocessor.sequence_length,
            "truncate": preprocessor.truncate,
            "cls_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "unk_token_id": tokenizer.token_to_id(tokenizer.oov_token),
            "mask_token_id": tokenizer.mask_token_id,
            "segment_layout": (
                "[CLS] first [SEP] (second [SEP]), padded with [PAD]; "
                "segment_ids 0 up to the first [SEP], 1 after; padding_mask "
                "1 on tokens, 0 on padding"
            ),
            "inputs": list(INPUTS),
            "outputs": outputs,
        },
    )


def _erfc_as_erf(graph, node, name, args):
    """tf2onnx handler: `erfc(x)` as `1 - erf(x)`, as ONNX has no Erfc
    (TensorFlow's exact GELU uses it)."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(graph.get_dtype(node.input[0]))
    erf = graph.make_node("Erf", [node.input[0]])
    one = graph.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    node.type = "Sub"
    graph.replace_inputs(node, [one.output[0], erf.output[0]])


def _check_onnx(model_path, function, preprocessor):
    """Raise a `RuntimeError` unless `onnxruntime` on `model_path` agrees
    with `function`; return the output names."""
    import onnxruntime

    # Random tokens, two segments and some padding, on which both must agree.
    rng = np.random.default_rng(0)
    length = preprocessor.sequence_length
    x = {
        "token_ids": rng.integers(
            0, preprocessor.tokenizer.vocabulary_size(), (3, length)
        ).astype("int32"),
        "segment_ids": np.tile(np.arange(length) >= length // 2, (3, 1))
        .astype("int32"),
        "padding_mask": (np.arange(length) < [[length], [length - 2], [3]])
        .astype("int32"),
    }
    expected = {
        name: value.numpy() for name, value in function(**x).items()
    }
    session = onnxruntime.InferenceSession(
        model_path, providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    found = dict(zip(names, session.run(names, x)))
    for name, value in expected.items():
        difference = np.abs(found[name] - value).max()
        if not difference <= ONNX_TOLERANCE:
            raise RuntimeError(
                f"The ONNX model's {name!r} differs from the Keras model's by "
                f"{difference:.2g} (more than {ONNX_TOLERANCE}): the "
                "converter (tf2onnx) may not support this TensorFlow "
                "release."
            )
    return sorted(expected)
