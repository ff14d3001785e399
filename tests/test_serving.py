"""`export_for_serving`: the SavedModel on raw strings (loaded where Keras,
keras-hub and keras_electra cannot be imported) and the ONNX model on token
ids give `task.predict`'s outputs on every backend; bad input is refused;
`recipes/finetune.py --export` writes a SavedModel."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_electra
from conftest import backend
from conftest import tiny_backbone
from keras_electra.conversion import serving
from scripts import load_script

finetune = load_script("recipes/finetune.py")

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a",
              "cat", "dog", "sat", "ran", "good", "bad", "movie", "where",
              "is", "it", "in", "par", "##is", ".", "?"]
TEXTS = ["The good movie.", "a bad dog ran", "Where is the cat?",
         "the cat sat in paris . the dog ran in paris . a good cat"]
QUESTIONS = ["Where is the cat?", "where is it", "Is it good?", "the dog"]
SEQUENCE_LENGTH = 16
# fp32 outputs of two backends (or runtimes) agree to a few ulps.
TOLERANCE = 1e-5
# Exporting costs seconds per artefact, and on JAX and PyTorch a
# TensorFlow subprocess each, which runs the same code as an export on
# TensorFlow: what depends on the backend is the saved weights and
# `predict`. So every backend exports the classifier's SavedModel (by
# `recipes/finetune.py --export`) and the question answerer (an attached
# preprocessor, two outputs, masked padding) as ONNX; TensorFlow, exporting
# in process, also the SavedModels of the others.
ON_TENSORFLOW = backend() == "tensorflow"
EXPORTS = [("answerer", "onnx")] + [
    ("tagger", "tf_saved_model"),
    ("answerer", "tf_saved_model"),
] * ON_TENSORFLOW
# The SavedModels' signatures and what they are fed.
REQUESTS = {
    "classifier": ("classifier", "serving_default", {"text": TEXTS}),
    "pairs": (
        "classifier",
        "serving_pairs",
        {"text": QUESTIONS, "text_pair": TEXTS},
    ),
    "tagger": ("tagger", "serving_default", {"text": TEXTS}),
    "answerer": (
        "answerer",
        "serving_default",
        {"question": QUESTIONS, "context": TEXTS},
    ),
}


def tiny_preprocessor(sequence_length=SEQUENCE_LENGTH):
    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)
    return keras_electra.ElectraTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def randomized(task, seed):
    # ELECTRA's initialisation gives all but uniform probabilities, which
    # would hide a wrong weight: spread them.
    rng = np.random.default_rng(seed)
    task.set_weights(
        [rng.normal(0, 0.5, w.shape).astype("float32")
         for w in task.get_weights()]
    )
    return task


def tiny_tasks():
    def backbone():
        return tiny_backbone(vocab_size=len(VOCABULARY))

    tasks = {
        "classifier": keras_electra.ElectraTextClassifier(
            backbone(), num_classes=3, preprocessor=tiny_preprocessor()
        ),
        "tagger": keras_electra.ElectraTokenClassifier(
            backbone(), num_classes=4
        ),
        "answerer": keras_electra.ElectraQuestionAnswerer(backbone()),
    }
    tasks["tagger"].preprocessor = tiny_preprocessor()
    tasks["answerer"].preprocessor = tiny_preprocessor()
    for seed, task in enumerate(tasks.values()):
        randomized(task, seed)
    return tasks


def softmax(logits):
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


@pytest.fixture(scope="module")
def tasks():
    return tiny_tasks()


def export_with_recipe(classifier, folder, monkeypatch):
    """`recipes/finetune.py --export`, its fine-tuning (which
    test_recipes.py runs) stubbed to return `classifier`."""
    rows = ["sentence,label"] + [
        f"{text},{index % 2}" for index, text in enumerate(TEXTS)
    ]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(
        finetune, "fine_tune_classifier", lambda *a, **k: (classifier, {})
    )
    path = str(folder / "recipe-export")
    argv = ["--preset", "unused", "--train-file", str(folder / "train.csv"),
            "--dev-file", str(folder / "train.csv"), "--export", path]
    finetune.main(argv)
    # Now the folder holds the export: refused before any fine-tuning.
    with pytest.raises(SystemExit):
        finetune.parse_args(argv)
    return path


@pytest.fixture(scope="module")
def exported(tasks, tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as monkeypatch:
        paths = {
            ("classifier", "tf_saved_model"): export_with_recipe(
                tasks["classifier"], root, monkeypatch
            )
        }
    for name, format in EXPORTS:
        path = str(root / f"{name}-{format}")
        serving.export_for_serving(tasks[name], path, format=format)
        paths[name, format] = path
    return paths


@pytest.fixture(scope="module")
def predictions(tasks):
    """`task.predict` on the test texts, as the serving outputs."""
    answerer = tasks["answerer"].predict((QUESTIONS, TEXTS), verbose=0)
    classifier = tasks["classifier"]
    predictions = {
        "classifier": {
            "probabilities": softmax(classifier.predict(TEXTS, verbose=0))
        },
        "pairs": {
            "probabilities": softmax(
                classifier.predict((QUESTIONS, TEXTS), verbose=0)
            )
        },
        "answerer": {
            "start_probabilities": softmax(answerer["start_logits"]),
            "end_probabilities": softmax(answerer["end_logits"]),
        },
    }
    if ON_TENSORFLOW:
        tagger = tasks["tagger"].predict(TEXTS, verbose=0)
        predictions["tagger"] = {"probabilities": softmax(tagger)}
    return predictions


# Loads the SavedModels in a Python where Keras, keras-hub and keras_electra
# cannot be imported. `import tensorflow_text` would import Keras (for its
# Keras layers), so the TensorFlow Text ops are loaded from their libraries.
SERVE_WITHOUT_KERAS = r"""
import glob, importlib.machinery, importlib.util, json, os, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "keras_hub", "keras_electra"):
            return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r}")

    def exec_module(self, module):
        pass

sys.meta_path.insert(0, NotInstalled())
import numpy as np
import tensorflow as tf

text = importlib.util.find_spec("tensorflow_text").submodule_search_locations[0]
for library in sorted(glob.glob(os.path.join(text, "python", "ops", "_*.so"))):
    tf.load_op_library(library)
with open(sys.argv[1]) as file:
    requests = json.load(file)
results = {}
for key, (path, signature, inputs) in requests.items():
    serve = tf.saved_model.load(path).signatures[signature]
    feed = {name: tf.constant(texts) for name, texts in inputs.items()}
    for name, value in serve(**feed).items():
        value = value.numpy()
        if value.dtype == object:  # Strings, as bytes.
            value = value.astype(str)
        results[f"{key}/{name}"] = value
try:
    import keras
    results["keras_blocked"] = np.array(False)
except ImportError:
    results["keras_blocked"] = np.array(True)
np.savez(sys.argv[2], **results)
"""


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """The SavedModels' outputs, computed without Keras."""
    folder = tmp_path_factory.mktemp("served")
    requests = {
        key: (exported[name, "tf_saved_model"], signature, inputs)
        for key, (name, signature, inputs) in REQUESTS.items()
        if (name, "tf_saved_model") in exported
    }
    with open(folder / "requests.json", "w") as file:
        json.dump(requests, file)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", SERVE_WITHOUT_KERAS,
         str(folder / "requests.json"), str(folder / "outputs.npz")],
        env=environment, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    return dict(np.load(folder / "outputs.npz"))


def assert_close(found, expected, label):
    difference = np.abs(found - expected).max()
    # Shown with `pytest -s`: the parity each format reaches.
    print(f"\n{backend()} {label}: largest difference {difference:.2g}")
    assert difference <= TOLERANCE, label


def test_saved_model_serves_strings_without_keras(
    exported, served, predictions
):
    assert served["keras_blocked"]
    for name, (task, _, _) in REQUESTS.items():
        if (task, "tf_saved_model") not in exported:
            continue
        for output, value in predictions[name].items():
            assert served[f"{name}/{output}"].shape == value.shape
            assert_close(
                served[f"{name}/{output}"], value,
                f"tf_saved_model {name} {output}",
            )


only_tensorflow = pytest.mark.skipif(
    not ON_TENSORFLOW, reason="exported on TensorFlow only (see EXPORTS)"
)


@only_tensorflow
def test_saved_model_maps_tokens(tasks, served):
    packed = tasks["tagger"].preprocessor(TEXTS)
    token_ids = keras.ops.convert_to_numpy(packed["token_ids"])
    np.testing.assert_array_equal(served["tagger/token_ids"], token_ids)
    np.testing.assert_array_equal(
        served["tagger/tokens"], np.array(VOCABULARY)[token_ids]
    )
    assert served["tagger/tokens"][3, 5:7].tolist() == ["par", "##is"]


@only_tensorflow
def test_saved_model_packs_question_and_context(tasks, served):
    answerer = tasks["answerer"].preprocessor(x=(QUESTIONS, TEXTS))
    np.testing.assert_array_equal(
        served["answerer/segment_ids"],
        keras.ops.convert_to_numpy(answerer["segment_ids"]),
    )
    # Padding is never an answer.
    padded = served["answerer/padding_mask"] == 0
    assert padded.any()
    assert not served["answerer/start_probabilities"][padded].any()


def test_onnx_matches_predict(exported, predictions):
    import onnxruntime

    path = exported["answerer", "onnx"]
    with open(os.path.join(path, serving.CONFIG_FILE)) as file:
        config = json.load(file)
    assert config["task"] == "ElectraQuestionAnswerer"
    assert config["sequence_length"] == SEQUENCE_LENGTH
    assert (config["cls_token_id"], config["sep_token_id"]) == (2, 3)
    # The files beside the model are enough to pack the inputs.
    tokenizer = keras_electra.ElectraTokenizer(
        os.path.join(path, config["vocabulary"]),
        lowercase=config["lowercase"],
        strip_accents=config["strip_accents"],
    )
    assert tokenizer.get_vocabulary() == VOCABULARY
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        tokenizer, sequence_length=config["sequence_length"],
        truncate=config["truncate"],
    )
    x = preprocessor(x=(QUESTIONS, TEXTS))
    x = {
        key: keras.ops.convert_to_numpy(x[key]).astype("int32")
        for key in config["inputs"]
    }
    session = onnxruntime.InferenceSession(
        os.path.join(path, serving.ONNX_FILE),
        providers=["CPUExecutionProvider"],
    )
    names = [output.name for output in session.get_outputs()]
    assert sorted(names) == config["outputs"]
    found = dict(zip(names, session.run(names, x)))
    for output, value in predictions["answerer"].items():
        assert_close(found[output], value, f"onnx answerer {output}")


def test_regression_serves_scores():
    regressor = keras_electra.ElectraTextClassifier(
        tiny_backbone(vocab_size=len(VOCABULARY)), num_classes=1,
        preprocessor=tiny_preprocessor(),
    )
    x = regressor.preprocessor(TEXTS)
    outputs = serving._probabilities(regressor, regressor(x))
    assert list(outputs) == ["scores"]
    assert tuple(outputs["scores"].shape) == (len(TEXTS), 1)


# === Bad input ===


@pytest.fixture
def tagger():
    tagger = keras_electra.ElectraTokenClassifier(
        tiny_backbone(vocab_size=len(VOCABULARY)), num_classes=2
    )
    tagger.preprocessor = tiny_preprocessor()
    return tagger


@pytest.mark.parametrize(
    "model",
    [
        lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]),
        lambda: keras_electra.ElectraDiscriminator(tiny_backbone()),
    ],
    ids=["keras_model", "discriminator"],
)
def test_unknown_task_is_refused(model, tmp_path):
    with pytest.raises(ValueError, match="must be one of .*TextClassifier"):
        serving.export_for_serving(model(), str(tmp_path / "out"))
    assert not os.listdir(tmp_path)


def test_task_without_preprocessor_is_refused(tagger, tmp_path):
    tagger.preprocessor = None
    with pytest.raises(ValueError, match="no ElectraTextClassifierPrep"):
        serving.export_for_serving(tagger, str(tmp_path / "out"))


def test_unknown_format_is_refused(tagger, tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of"):
        serving.export_for_serving(tagger, str(tmp_path / "out"), "tflite")


def test_existing_folder_is_not_overwritten(tagger, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    (tmp_path / "file").write_text("old")
    for path in (target, tmp_path / "file"):
        with pytest.raises(ValueError, match="not an empty folder"):
            serving.export_for_serving(tagger, str(path))
    assert (target / "keep.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["file", "out"]


def test_sequences_longer_than_the_backbone_are_refused(tagger, tmp_path):
    tagger.preprocessor = tiny_preprocessor(sequence_length=64)
    with pytest.raises(ValueError, match="max_sequence_length"):
        serving.export_for_serving(tagger, str(tmp_path / "out"))


def test_failed_export_leaves_nothing(tagger, tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(serving, "_write", fail)
    monkeypatch.setattr(serving, "_write_with_tensorflow", fail)
    with pytest.raises(OSError, match="disk full"):
        serving.export_for_serving(tagger, str(tmp_path / "out"))
    assert not os.listdir(tmp_path)
