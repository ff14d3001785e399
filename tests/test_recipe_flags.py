"""Every recipe checks its flags against the preset and the data before any
work, one test per bad input, through the command line (`main(argv)`): the
run stops with argparse's usage error (exit status 2) naming the flag.

Backend-free: argument parsing and file checks run before Keras builds or
trains anything, so these run on TensorFlow only.
"""

import os

import pytest

from conftest import backend, tiny_backbone
from scripts import load_script

finetune = load_script("recipes/finetune.py")
pretrain = load_script("recipes/pretrain.py")

pytestmark = pytest.mark.skipif(
    backend() != "tensorflow",
    reason="flag checks run before any backend code (one backend suffices)",
)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A saved backbone whose `max_sequence_length` is 32."""
    path = str(tmp_path_factory.mktemp("preset") / "backbone")
    tiny_backbone().save_to_preset(path)
    return path


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\na cat,0\na dog,1\nthe mat,2\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\na cat,0\n")
    return str(train), str(dev)


@pytest.fixture
def no_training(monkeypatch):
    def fails(*args, **kwargs):
        raise AssertionError("fine-tuning started")

    monkeypatch.setattr(finetune, "fine_tune_classifier", fails)


def refused(main, argv, capsys):
    """The usage error `main(argv)` stops with."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


# === recipes/finetune.py ===


def test_finetune_sequence_length_above_the_presets(preset, files, capsys):
    argv = ["--preset", preset, "--train-file", files[0], "--dev-file",
            files[1]]
    error = refused(
        finetune.main, argv + ["--max-sequence-length", "64"], capsys
    )
    assert "--max-sequence-length 64 exceeds the preset's " in error
    assert "max_sequence_length (32)" in error
    # Left out, it is the preset's when that is shorter than 128.
    assert finetune.parse_args(argv).max_sequence_length == 32


def test_finetune_unknown_task(preset, capsys):
    error = refused(
        finetune.main, ["--preset", preset, "--task", "sst3"], capsys
    )
    assert "unknown --task 'sst3'" in error


@pytest.mark.parametrize("kind", ["missing", "a folder"])
def test_finetune_file_that_is_not_there(preset, files, tmp_path, kind, capsys):
    path = str(tmp_path / "nope.csv") if kind == "missing" else str(tmp_path)
    error = refused(
        finetune.main,
        ["--preset", preset, "--train-file", path, "--dev-file", files[1]],
        capsys,
    )
    assert f"argument --train-file: '{path}' is not a file" in error


def test_finetune_file_without_the_named_columns(
    preset, files, no_training, capsys
):
    error = refused(
        finetune.main,
        ["--preset", preset, "--train-file", files[0], "--dev-file",
         files[1], "--text-columns", "review"],
        capsys,
    )
    assert "review" in error and "['text', 'label']" in error


def test_finetune_labels_outside_num_classes(
    preset, files, no_training, capsys
):
    error = refused(
        finetune.main,
        ["--preset", preset, "--train-file", files[0], "--dev-file",
         files[1], "--num-classes", "2"],
        capsys,
    )
    assert f"--train-file {files[0]}: labels from 0 to 2" in error
    assert "outside [0, 2) (--num-classes 2)" in error


def test_finetune_named_labels_get_the_training_files_indices(
    preset, tmp_path, no_training, capsys
):
    # Alone, the dev file's "pos" would be class 0.
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("text,label\ngood,pos\nbad,neg\n")
    dev.write_text("text,label\nfine,pos\nawful,worse\n")
    error = refused(
        finetune.main,
        ["--preset", preset, "--train-file", str(train), "--dev-file",
         str(dev)],
        capsys,
    )
    assert "bad label 'worse'; expected one of ['neg', 'pos']" in error


def test_finetune_output_folder_that_holds_something_else(
    preset, files, tmp_path, capsys
):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "thesis.tex").write_text("draft")
    error = refused(
        finetune.main,
        ["--preset", preset, "--train-file", files[0], "--dev-file",
         files[1], "--output", str(output)],
        capsys,
    )
    assert f"--output '{output}' holds other files" in error
    assert os.listdir(output) == ["thesis.tex"]


# === recipes/pretrain.py ===


def test_pretrain_corpus_that_is_not_there(tmp_path, capsys):
    path = str(tmp_path / "nope.txt")
    error = refused(
        pretrain.main,
        ["--corpus", path, "--output", str(tmp_path / "run")],
        capsys,
    )
    assert f"argument --corpus: '{path}' is not a file" in error


def test_pretrain_vocabulary_that_is_not_there(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sat.\n")
    path = str(tmp_path / "vocab.txt")
    error = refused(
        pretrain.main,
        ["--corpus", str(corpus), "--vocabulary", path, "--output",
         str(tmp_path / "run")],
        capsys,
    )
    assert f"argument --vocabulary: '{path}' is not a file" in error


def test_pretrain_output_folder_that_holds_something_else(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sat.\n")
    # tmp_path holds the corpus and nothing of a run.
    error = refused(
        pretrain.main, ["--corpus", str(corpus), "--output", str(tmp_path)],
        capsys,
    )
    assert f"--output '{tmp_path}' holds other files" in error
    assert os.listdir(tmp_path) == ["corpus.txt"]
