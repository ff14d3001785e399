"""The README's bad-input table, one test per row: each bad input fails with
a clear `ValueError` (or the documented warning) that names the problem, and
nothing is lost or half-written. Then the security checks of loading.

Rows (in the README's order):
empty corpus; a file that is not UTF-8; a document longer than any
sequence; a vocabulary without the special tokens; token ids >= the
vocabulary size; a sequence longer than `max_sequence_length`; a preset path
that does not exist; a truncated weights file; a config whose shapes
disagree with the weights; a BERT / RoBERTa checkpoint offered as ELECTRA;
fine-tuning labels outside `[0, num_classes)`; a disk-full or permission
error while saving.
"""

import errno
import hashlib
import io
import json
import os
import shutil
import tarfile
import warnings

import keras
import keras_hub
import numpy as np
import pytest

import keras_electra
from conftest import VOCAB_SIZE
from conftest import tiny_backbone
from conftest import tiny_batch
from conftest import tiny_pretrainer
from keras_electra import data as datasets
from keras_electra import pretraining as pretraining_data
from keras_electra.utils.preset_loading import weights_errors

from scripts import load_script

pretrain = load_script("recipes/pretrain.py")

WORDS = "the a cat dog sat ran on mat house big".split()
VOCABULARY = pretraining_data.SPECIAL_TOKENS + WORDS + ["."]
# The recipe's flags for a tiny model; every run below fails before training.
TINY_RUN = [
    "--size", "tiny", "--num-layers", "1", "--hidden-dim", "16",
    "--num-heads", "2", "--embedding-dim", "8", "--intermediate-dim", "32",
    "--vocabulary-size", "40", "--max-sequence-length", "16",
    "--batch-size", "2", "--steps", "2", "--jit-compile", "false",
    "--verbose", "0",
]


def tokenizer():
    return keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def good_corpus(tmp_path):
    return write(tmp_path / "good.txt", "The cat sat.\nThe dog ran.\n\n" * 4)


def snapshot(directory):
    """`{relative path: sha256}` of every file under `directory`."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                found[os.path.relpath(path, directory)] = hashlib.sha256(
                    file.read()
                ).hexdigest()
    return found


def weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]


def assert_unchanged(model, before, rtol=0.0):
    for a, b in zip(weights(model), before):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


# With `tf.data` on TensorFlow the bad batch is read inside the compiled
# step, and ops that do not depend on it (AdamW's weight decay, a 1e-6
# relative change) may run before the read fails; no gradient step (about
# 1e-4 here) is taken.
NO_GRADIENT_STEP = 1e-5


def tiny_classifier(num_classes=2):
    classifier = keras_electra.ElectraTextClassifier(
        tiny_backbone(), num_classes=num_classes
    )
    classifier.compile(jit_compile=False)  # Nothing to compile: faster.
    return classifier


@pytest.fixture(scope="module")
def classifier_preset(tmp_path_factory):
    """A saved 2-class classifier preset (config, weights, task)."""
    path = str(tmp_path_factory.mktemp("presets") / "classifier")
    keras.utils.set_random_seed(0)
    tiny_classifier().save_to_preset(path)
    return path


def copy_preset(source, tmp_path, name="copy"):
    target = str(tmp_path / name)
    shutil.copytree(source, target)
    return target


# === The table ===


def test_empty_corpus(tmp_path):
    empty = write(tmp_path / "empty.txt", "\n \n\n")
    # The library: no example, and no shard or metadata written.
    with pytest.raises(ValueError, match="no example"):
        pretraining_data.write_pretraining_shards(
            [empty], tokenizer(), tmp_path / "shards", num_workers=1,
            verbose=0,
        )
    assert os.listdir(tmp_path / "shards") == []
    # The recipe: fails before writing a vocabulary, examples or run.json.
    output = tmp_path / "run"
    with pytest.raises(ValueError, match="no text"):
        pretrain.main(["--corpus", empty, "--output", str(output), *TINY_RUN])
    assert os.listdir(output) == []


def test_file_that_is_not_utf8(tmp_path):
    good = good_corpus(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\xe9 au lait.\n".encode("latin-1"))
    # strict (the default): a ValueError naming the file, nothing written.
    output = tmp_path / "strict"
    with pytest.raises(ValueError, match=r"latin1\.txt.*not valid UTF-8"):
        pretrain.main(
            ["--corpus", good, str(bad), "--output", str(output), *TINY_RUN]
        )
    assert os.listdir(output) == []
    # skip: a warning naming the file, the other files are used.
    shards = tmp_path / "shards"
    with pytest.warns(UserWarning, match=r"latin1\.txt"):
        pretraining_data.write_pretraining_shards(
            [good, str(bad)], tokenizer(), shards, max_sequence_length=16,
            num_workers=1, errors="skip", verbose=0,
        )
    with open(shards / pretraining_data.METADATA_FILE) as file:
        assert json.load(file)["num_examples"] > 0


def test_recipe_on_bad_file_skip(tmp_path):
    """`recipes/pretrain.py --on-bad-file skip`: vocabulary and examples are
    built from the good files, with a warning for the bad one."""
    good = good_corpus(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\xe9 au lait.\n".encode("latin-1"))
    output = tmp_path / "skip"
    args = pretrain.parse_args(
        ["--corpus", good, str(bad), "--output", str(output),
         "--on-bad-file", "skip", *TINY_RUN]
    )
    os.makedirs(output)
    with pytest.warns(UserWarning, match=r"latin1\.txt"):
        pretrain.prepare_data(args, args.corpus, str(output / "examples"))
    assert os.path.exists(output / "vocab.txt")
    assert os.path.exists(output / "examples" / pretraining_data.METADATA_FILE)


def test_document_longer_than_any_sequence():
    # One sentence longer than a sequence: truncated, not dropped.
    examples = list(
        pretraining_data.build_examples(
            [["big " * 50]], tokenizer(), max_sequence_length=6
        )
    )
    big = VOCABULARY.index("big")
    assert [list(e["token_ids"]) for e in examples] == [
        [VOCABULARY.index("[CLS]")] + [big] * 4 + [VOCABULARY.index("[SEP]")]
    ]
    # A document of many sentences: spread over several examples, every
    # sentence used.
    document = [f"{word} {word} ." for word in WORDS]
    examples = list(
        pretraining_data.build_examples(
            [document], tokenizer(), max_sequence_length=8, seed=0
        )
    )
    assert len(examples) > 1
    used = set(np.concatenate([e["token_ids"] for e in examples]).tolist())
    assert {VOCABULARY.index(word) for word in WORDS} <= used


def test_vocabulary_without_special_tokens(tmp_path):
    path = write(tmp_path / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\nthe\ncat\n")
    with pytest.raises(ValueError, match=r"\[SEP\].*\[MASK\]"):
        pretraining_data.load_vocabulary(path)
    # The recipe's --vocabulary: refused before anything is written.
    output = tmp_path / "run"
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        pretrain.main(
            ["--corpus", good_corpus(tmp_path), "--output", str(output),
             "--vocabulary", path, *TINY_RUN]
        )
    assert os.listdir(output) == []
    # A pretrainer given such a tokenizer.
    bare = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat"]
    )
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        keras_electra.ElectraPretrainer(tiny_backbone(), tokenizer=bare)


def test_token_ids_outside_the_vocabulary():
    batch = tiny_batch()
    batch["token_ids"][2, 3] = VOCAB_SIZE + 5
    pretrainer = tiny_pretrainer()
    pretrainer.compile()
    with pytest.raises(ValueError, match=f"vocabulary size {VOCAB_SIZE}"):
        pretrainer.fit(batch, batch_size=4, verbose=0)
    classifier = tiny_classifier()
    before = weights(classifier)
    labels = np.arange(8) % 2
    with pytest.raises(ValueError, match=rf"\[0, {VOCAB_SIZE}\)"):
        classifier.fit(batch, labels, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=rf"\[0, {VOCAB_SIZE}\)"):
        classifier.predict(batch, verbose=0)
    batch["token_ids"][2, 3] = -1
    with pytest.raises(ValueError, match="token ids"):
        classifier.evaluate(batch, labels, verbose=0)
    assert_unchanged(classifier, before)  # nothing was trained


def test_token_ids_outside_the_vocabulary_in_tf_data():
    import tensorflow as tf

    batch = tiny_batch()
    batch["token_ids"][1, 1] = VOCAB_SIZE  # in the first batch
    classifier = tiny_classifier()
    before = weights(classifier)
    dataset = tf.data.Dataset.from_tensor_slices(
        (batch, np.arange(8) % 2)
    ).batch(4)
    with pytest.raises(ValueError, match=f"vocabulary size {VOCAB_SIZE}"):
        classifier.fit(dataset, verbose=0)
    assert_unchanged(classifier, before, rtol=NO_GRADIENT_STEP)


def test_sequence_longer_than_max_sequence_length():
    long_batch = tiny_batch(length=40)  # TINY: max_sequence_length=32
    with pytest.raises(ValueError, match="max_sequence_length"):
        tiny_pretrainer()(long_batch)
    classifier = tiny_classifier()
    with pytest.raises(ValueError, match=r"length 40.*max_sequence_length"):
        classifier.predict(long_batch, verbose=0)
    with pytest.raises(ValueError, match="max_sequence_length"):
        classifier.fit(long_batch, np.arange(8) % 2, verbose=0)
    # A preprocessor that would pack longer sequences is refused up front.
    vocabulary = VOCABULARY + [f"w{i}" for i in range(VOCAB_SIZE)]
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(vocabulary[:VOCAB_SIZE]),
        sequence_length=64,
    )
    with pytest.raises(ValueError, match=r"64 tokens.*max_sequence_length"):
        keras_electra.ElectraTextClassifier(
            tiny_backbone(), 2, preprocessor=preprocessor
        )


def test_preset_path_that_does_not_exist(tmp_path):
    missing = str(tmp_path / "no_such_preset")
    for load in (
        keras_electra.ElectraBackbone.from_preset,
        keras_electra.ElectraPretrainer.from_preset,
        lambda path: keras_electra.ElectraTextClassifier.from_preset(
            path, num_classes=2
        ),
    ):
        with pytest.raises(ValueError, match="no_such_preset.*neither"):
            load(missing)
    assert not os.path.exists(missing)  # not created by the attempt


@pytest.mark.parametrize(
    "filename", ["model.weights.h5", "task.weights.h5"]
)
def test_truncated_weights_file(classifier_preset, tmp_path, filename):
    preset = copy_preset(classifier_preset, tmp_path)
    path = os.path.join(preset, filename)
    with open(path, "rb") as file:
        data = file.read()
    with open(path, "wb") as file:
        file.write(data[: len(data) // 2])
    before = snapshot(preset)
    with pytest.raises(ValueError, match=rf"{filename}.*truncated or corrupt"):
        keras_electra.ElectraTextClassifier.from_preset(preset)
    assert snapshot(preset) == before  # loading never writes


def test_config_that_disagrees_with_the_weights(classifier_preset, tmp_path):
    preset = copy_preset(classifier_preset, tmp_path)
    path = os.path.join(preset, "config.json")
    with open(path) as file:
        config = json.load(file)
    config["config"]["hidden_dim"] *= 2  # 16 -> 32, still 2 heads
    with open(path, "w") as file:
        json.dump(config, file)
    # Our error alone: not Keras' "Skipping nested container" warnings first.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            ValueError,
            match=r"model\.weights\.h5.*do not match.*config\.json",
        ):
            keras_electra.ElectraBackbone.from_preset(preset)
        with pytest.raises(ValueError, match=r"model\.weights\.h5"):
            keras_electra.ElectraTextClassifier.from_preset(preset)
    assert [str(warning.message) for warning in caught] == []


def test_warnings_while_loading_weights_shown_only_if_the_load_succeeds():
    with pytest.warns(UserWarning, match="kept"):
        with weights_errors("a-preset", "model.weights.h5"):
            warnings.warn("kept")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            ValueError, match=r"Cannot load model\.weights\.h5 of preset 'a-"
        ):
            with weights_errors("a-preset", "model.weights.h5"):
                warnings.warn("held back")
                raise ValueError("shapes differ")
    assert [str(warning.message) for warning in caught] == []


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_bert_or_roberta_checkpoint_offered_as_electra(tmp_path, model_type):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    config_class, model_class = {
        "bert": (transformers.BertConfig, transformers.BertModel),
        "roberta": (transformers.RobertaConfig, transformers.RobertaModel),
    }[model_type]
    config = config_class(
        vocab_size=64, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=40,
    )
    path = str(tmp_path / model_type)
    model_class(config).save_pretrained(path)
    message = f"'{model_type}' model, not ELECTRA"
    for load in (
        keras_electra.ElectraBackbone.from_preset,
        keras_electra.ElectraPretrainer.from_preset,
        lambda preset: keras_electra.ElectraTextClassifier.from_preset(
            preset, num_classes=2
        ),
    ):
        with pytest.raises(ValueError, match=message):
            load(path)
    # A keras-hub BERT preset too.
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=16,
    )
    bert.save_to_preset(str(tmp_path / "keras_bert"))
    with pytest.raises(ValueError, match="not an ELECTRA"):
        keras_electra.ElectraBackbone.from_preset(str(tmp_path / "keras_bert"))


@pytest.mark.parametrize("label", [5, 2, -1])
def test_labels_outside_num_classes(label):
    classifier = tiny_classifier(num_classes=2)
    before = weights(classifier)
    batch = tiny_batch()
    labels = np.arange(8) % 2
    labels[3] = label
    with pytest.raises(ValueError, match=rf"\[0, 2\).*found {label}"):
        classifier.fit(batch, labels, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        classifier.evaluate(batch, labels, verbose=0)
    assert_unchanged(classifier, before)  # nothing was trained


def test_labels_outside_num_classes_in_tf_data_and_token_classifier():
    import tensorflow as tf

    batch = tiny_batch()
    labels = np.arange(8) % 2
    labels[2] = 5  # in the first batch
    dataset = tf.data.Dataset.from_tensor_slices((batch, labels)).batch(4)
    classifier = tiny_classifier()
    before = weights(classifier)
    with pytest.raises(ValueError, match=r"\[0, 2\).*found \[?5"):
        classifier.fit(dataset, verbose=0)
    assert_unchanged(classifier, before, rtol=NO_GRADIENT_STEP)
    # Per-token labels; the loss' ignore_class stays allowed.
    tagger = keras_electra.ElectraTokenClassifier(tiny_backbone(), 3)
    tagger.compile(jit_compile=False)
    tags = np.zeros(batch["token_ids"].shape, "int32")
    tags[1, 2] = 3
    with pytest.raises(ValueError, match=r"\[0, 3\).*found 3"):
        tagger.fit(batch, tags, verbose=0)
    tagger.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=-100
        ),
        jit_compile=False,
    )
    tags[1, 2] = -100
    tagger.evaluate(batch, tags, batch_size=8, verbose=0)
    # Regression (num_classes=1) takes any value.
    tiny_classifier(num_classes=1).evaluate(
        batch, np.linspace(-3, 7, 8), batch_size=8, verbose=0
    )


def _fail_mid_write(kind):
    """A save function that dies half-way, as on a full disk or a
    read-only folder."""
    if kind == "disk full":

        def save_weights(self, filepath, *args, **kwargs):
            with open(filepath, "wb") as file:
                file.write(b"\x89HDF\r\n\x1a\n partial")
            raise OSError(errno.ENOSPC, "No space left on device", filepath)

        return keras.Model, "save_weights", save_weights, errno.ENOSPC

    from keras_hub.src.utils import preset_utils

    def save_metadata(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "metadata")

    return preset_utils.KerasPresetSaver, "_save_metadata", save_metadata, (
        errno.EACCES
    )


# Every model with `save_to_preset`: two different instances and the loader.
SAVEABLE = {
    "pretrainer": (
        tiny_pretrainer, keras_electra.ElectraPretrainer.from_preset
    ),
    "text classifier": (
        lambda seed: tiny_classifier(4 - seed),
        keras_electra.ElectraTextClassifier.from_preset,
    ),
    "token classifier": (
        lambda seed: keras_electra.ElectraTokenClassifier(
            tiny_backbone(), num_classes=3
        ),
        keras_electra.ElectraTokenClassifier.from_preset,
    ),
    "discriminator": (
        lambda seed: keras_electra.ElectraDiscriminator(tiny_backbone()),
        keras_electra.ElectraDiscriminator.from_preset,
    ),
    "generator": (
        lambda seed: keras_electra.ElectraGenerator(tiny_backbone()),
        keras_electra.ElectraGenerator.from_preset,
    ),
    "question answerer": (
        lambda seed: keras_electra.ElectraQuestionAnswerer(tiny_backbone()),
        keras_electra.ElectraQuestionAnswerer.from_preset,
    ),
}


@pytest.mark.parametrize("kind", ["disk full", "permission denied"])
@pytest.mark.parametrize("model", sorted(SAVEABLE))
def test_error_while_saving_keeps_the_previous_preset(
    tmp_path, monkeypatch, kind, model
):
    keras.utils.set_random_seed(0)
    build, load = SAVEABLE[model]
    previous, new = build(seed=1), build(seed=2)
    preset = str(tmp_path / "preset")
    previous.save_to_preset(preset)
    before = snapshot(preset)
    target, name, failing, code = _fail_mid_write(kind)
    with monkeypatch.context() as patch:
        patch.setattr(target, name, failing)
        with pytest.raises(OSError) as error:
            new.save_to_preset(preset)
    assert error.value.errno == code
    # The previous preset is intact and loads; no temporary folder is left.
    assert snapshot(preset) == before
    assert os.listdir(tmp_path) == ["preset"]
    restored = load(preset)
    for a, b in zip(weights(restored), weights(previous)):
        np.testing.assert_array_equal(a, b)
    # A later save succeeds and replaces it whole.
    new.save_to_preset(preset)
    assert snapshot(preset) != before
    assert os.listdir(tmp_path) == ["preset"]


def test_save_refuses_to_replace_a_folder_that_is_not_a_preset(tmp_path):
    write(tmp_path / "notes.txt", "my notes")
    with pytest.raises(ValueError, match="not a preset"):
        tiny_classifier().save_to_preset(str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


# === Security ===


def test_preset_config_with_lambda_or_arbitrary_class_is_refused(
    classifier_preset, tmp_path
):
    marker = tmp_path / "executed"
    # A Python lambda that would create `marker` if it ever ran.
    code = eval(f"lambda x: __import__('os').makedirs({str(marker)!r})")
    lambda_layer = keras.saving.serialize_keras_object(
        keras.layers.Lambda(code)
    )
    arbitrary = {
        "module": "os", "class_name": "system", "registered_name": "os>system",
        "config": {"command": f"touch {marker}"},
    }
    for name, config in (("lambda", lambda_layer), ("class", arbitrary)):
        preset = copy_preset(classifier_preset, tmp_path, name)
        with open(os.path.join(preset, "config.json"), "w") as file:
            json.dump(config, file)
        with pytest.raises(ValueError, match="no class registered"):
            keras_electra.ElectraBackbone.from_preset(preset)
    # A Lambda where the tokenizer should be: Keras safe mode refuses it.
    preset = str(tmp_path / "pretrainer")
    vocabulary = VOCABULARY + [f"w{i}" for i in range(VOCAB_SIZE)]
    tiny_pretrainer(
        tokenizer=keras_electra.ElectraTokenizer(vocabulary[:VOCAB_SIZE])
    ).save_to_preset(preset)
    with open(os.path.join(preset, "tokenizer.json"), "w") as file:
        json.dump(lambda_layer, file)
    for load in (
        keras_electra.ElectraPretrainer.from_preset,
        lambda path: keras_electra.ElectraTextClassifier.from_preset(
            path, num_classes=2
        ),
    ):
        with pytest.raises(ValueError, match="safe_mode"):
            load(preset)
    assert not marker.exists()


class _Exploit:
    """Unpickling this calls `os.makedirs(path)`: code, not a tensor."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_pickle_code_in_pytorch_bin_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({
        "model_type": "electra", "vocab_size": 32, "embedding_size": 8,
        "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 16,
    }))
    marker = tmp_path / "executed"
    torch.save(
        {"embeddings.word_embeddings.weight": torch.zeros(32, 8),
         "payload": _Exploit(str(marker))},
        str(checkpoint / "pytorch_model.bin"),
    )
    with pytest.raises(ValueError, match="pytorch_model.bin.*weights_only"):
        keras_electra.ElectraBackbone.from_preset(str(checkpoint))
    assert not marker.exists()  # the pickled call never ran
    # The file does hold the call (unpickled unsafely, it would run).
    with open(checkpoint / "pytorch_model.bin", "rb") as file:
        assert b"makedirs" in file.read()


@pytest.mark.parametrize(
    "member", ["../evil.txt", "package/../../evil.txt", "/tmp/evil.txt"]
)
def test_archive_with_path_traversal_is_refused(tmp_path, member):
    path = tmp_path / "archive.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("package/data.txt", b"ok"), (member, b"evil")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="Unsafe member"):
        list(datasets.iter_archive_members(str(path), "package/*"))
    assert sorted(os.listdir(tmp_path)) == ["archive.tgz"]  # nothing written
    assert not os.path.exists(tmp_path.parent / "evil.txt")

