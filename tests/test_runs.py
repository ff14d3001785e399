"""The run plumbing the recipes and benchmarks share
(`keras_electra.training.runs`, `keras_electra.training.finetuning`,
`keras_electra.pretraining.preparation`, `keras_electra.data.in_domain`):
resume-or-start, the time budget, the shared settings, the fine-tuning run
and the data prepared once. Tiny and offline."""

import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_electra
from keras_electra.data.in_domain import write_in_domain_corpus
from keras_electra.pretraining.preparation import prepare_examples
from keras_electra.pretraining.preparation import prepare_vocabulary
from keras_electra.training import finetuning
from keras_electra.training import runs

WORDS = "the a cat dog sat ran on mat good bad".split()


def tiny_pretrainer():
    return keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=200, num_layers=1, max_sequence_length=8,
        seed=0,
    )


def tiny_batches():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(104, 200, size=(2, 8), dtype="int32")
    batch = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }
    return tf.data.Dataset.from_tensors(batch).repeat()


def test_resume_or_start_starts_then_resumes(tmp_path):
    pretrainer = tiny_pretrainer()
    pretrainer.compile(jit_compile=False)
    checkpoints = str(tmp_path / "checkpoints")
    assert runs.resume_or_start(pretrainer, checkpoints) == {
        "checkpoint": None, "step": 0, "initial_epoch": 0, "data_position": 0,
    }
    pretrainer.fit(
        tiny_batches(), epochs=1, steps_per_epoch=2, verbose=0,
        callbacks=[keras_electra.PretrainingCheckpoint(checkpoints, 2)],
    )
    again = tiny_pretrainer()
    again.compile(jit_compile=False)
    state = runs.resume_or_start(again, checkpoints)
    assert state["checkpoint"].endswith("ckpt-00000002")
    assert (state["step"], state["initial_epoch"]) == (2, 1)
    assert state["data_position"] == 2
    assert int(again.optimizer.iterations.numpy()) == 2


class Sleeps(keras.callbacks.Callback):
    """Stands in for a run's callbacks: work every step and every epoch."""

    def __init__(self, every_step, every_epoch):
        super().__init__()
        self.every_step, self.every_epoch = every_step, every_epoch

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.every_step)

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.every_epoch)


def test_step_costs_count_the_callbacks():
    pretrainer = tiny_pretrainer()
    pretrainer.compile(jit_compile=False)
    # Sleeps long against a tiny step, so the bounds hold on a loaded machine.
    costs = runs.measure_step_costs(
        pretrainer, tiny_batches(), [Sleeps(0.2, 2.0)], steps_per_epoch=4
    )
    assert costs.step >= 0.2
    assert 1.5 <= costs.epoch_end <= 2.0 + 4 * costs.step
    assert costs.per_step(100) == pytest.approx(costs.step + costs.epoch_end / 100)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        runs.measure_step_costs(pretrainer, tiny_batches(), steps_per_epoch=1)


def test_steps_in_budget_leave_room_for_startup_and_epoch_ends():
    costs = runs.StepCosts(startup=30.0, step=0.1, epoch_end=5.0)
    # 10 min = 600 s: 30 s startup, 55 s already spent, then epochs of at
    # most 100 steps x 0.1 s + 5 s = 15 s: 35 epochs fill the 515 s left,
    # shortened alike to 97 steps (35 x 14.7 s = 514.5 s).
    assert runs.steps_in_budget(
        10, costs, steps_per_epoch=100, elapsed_seconds=55
    ) == (35 * 97, 97)
    # 0.7 min = 42 s: 12 s after the startup hold one epoch, shortened to
    # (12 s - 5 s) / 0.1 s = 70 steps, not the 100 that would overrun it.
    assert runs.steps_in_budget(0.7, costs, steps_per_epoch=100) == (70, 70)
    # A budget that holds no step at all: `minimum` steps (1 by default).
    assert runs.steps_in_budget(0.1, costs, steps_per_epoch=100) == (1, 1)
    assert runs.steps_in_budget(
        0.1, costs, steps_per_epoch=100, minimum=500
    ) == (500, 100)
    assert runs.steps_in_budget(
        0.1, costs, steps_per_epoch=100, minimum=450
    ) == (450, 90)
    with pytest.raises(ValueError, match="minutes"):
        runs.steps_in_budget(0, costs, steps_per_epoch=100)


def test_a_run_that_slows_down_stops_on_its_deadline():
    pretrainer = tiny_pretrainer()
    pretrainer.compile(jit_compile=False)
    pretrainer.fit(tiny_batches(), steps_per_epoch=1, verbose=0)  # Compiled.
    # Planned: 5 epochs of 4 steps, at least 4 s; the deadline is in 1 s.
    # (The first step may be slower: JAX and torch trace a new fit again.)
    stop = runs.StopAtDeadline(time.time() + 1.0)
    pretrainer.fit(tiny_batches(), epochs=5, steps_per_epoch=4, verbose=0,
                   callbacks=[Sleeps(0.2, 0.0), stop])
    # It stopped past the deadline, before the plan's end, and no step ran
    # after the one that ended past it.
    assert time.time() >= stop.deadline
    assert 1 <= stop.stopped_at_step < 20
    assert int(pretrainer.optimizer.iterations.numpy()) == 1 + stop.stopped_at_step
    # A deadline the run never reaches changes nothing.
    on_time = runs.StopAtDeadline(time.time() + 600)
    pretrainer.fit(tiny_batches(), epochs=2, steps_per_epoch=2, verbose=0,
                   callbacks=[on_time])
    assert on_time.stopped_at_step is None
    assert int(pretrainer.optimizer.iterations.numpy()) == 5 + stop.stopped_at_step


def test_step_clock_times_the_batches_asked_for():
    pretrainer = tiny_pretrainer()
    pretrainer.compile(jit_compile=False)
    clock = runs.StepClock(batches=(0, 2))
    pretrainer.fit(tiny_batches(), steps_per_epoch=3, callbacks=[clock],
                   verbose=0)
    assert len(clock.times) == len(clock.losses) == 2
    assert clock.train_begin <= clock.times[0] <= clock.times[1]


def test_shared_settings():
    assert runs.PRETRAINING_LEARNING_RATES["small"] == 5e-4
    assert set(runs.PRETRAINING_LEARNING_RATES) == set(runs.SIZES)
    assert runs.jit_compile_option("auto") == "auto"
    assert runs.jit_compile_option("false") is False
    with pytest.raises(ValueError, match="choice"):
        runs.jit_compile_option("yes")
    # The demo's preset is its sizes scaled from the width.
    demo = keras_electra.presets[runs.DEMO_PRESET]["backbone"]
    assert runs.encoder_dimensions(demo["num_layers"], demo["hidden_dim"]) == {
        name: demo[name] for name in (
            "num_layers", "hidden_dim", "num_heads", "embedding_dim",
            "intermediate_dim",
        )
    }
    assert demo["max_sequence_length"] == runs.DEMO_PRETRAINING[
        "max_sequence_length"
    ]
    assert runs.encoder_dimensions(1, 16)["num_heads"] == 1
    with pytest.raises(ValueError, match="hidden_dim"):
        runs.encoder_dimensions(2, 0)
    assert isinstance(runs.backend_version(), str)


def test_size_of_and_reinitialize_top_layers():
    backbone = keras_electra.ElectraBackbone.from_preset(
        "electra_tiny", vocab_size=50
    )
    assert finetuning.size_of(backbone) == "small"
    before = backbone.transformer_layers[0].get_weights()
    top = backbone.transformer_layers[1].get_weights()
    finetuning.reinitialize_top_layers(backbone, 1)
    for old, new in zip(before, backbone.transformer_layers[0].get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(
        not np.array_equal(old, new)
        for old, new in zip(top, backbone.transformer_layers[1].get_weights())
    )
    for count in (0, 3):
        with pytest.raises(ValueError, match=r"\[1, 2\]"):
            finetuning.reinitialize_top_layers(backbone, count)


def test_subset_and_bad_size():
    split = {"texts": list("abcdef"), "labels": np.arange(6)}
    kept = finetuning.subset(split, 3)
    assert kept["texts"] == [split["texts"][i] for i in kept["labels"]]
    with pytest.raises(ValueError, match="size"):
        finetuning.subset(split, 0)


@pytest.mark.parametrize(
    "texts",
    [["good dog", "bad dog"], [("good dog", "the cat"), ("bad dog", "a mat")]],
)
def test_classification_dataset_takes_lists_or_arrays(texts):
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(
            keras_electra.pretraining.SPECIAL_TOKENS + WORDS
        ),
        sequence_length=8,
    )
    labels = np.array([1, 0])
    batches = [
        next(iter(finetuning.classification_dataset(
            preprocessor, {"texts": kind(texts), "labels": labels}, 2
        )))
        for kind in (list, np.array)
    ]
    (from_list, _), (from_array, _) = batches
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(from_array[name], from_list[name])
    if isinstance(texts[0], tuple):  # Both sentences, in two segments.
        assert np.asarray(from_list["segment_ids"]).max() == 1


def test_fine_tune_classifier_scores_every_split(tmp_path):
    vocabulary = keras_electra.pretraining.SPECIAL_TOKENS + WORDS
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
    preset = str(tmp_path / "preset")
    classifier.save_to_preset(preset)
    split = {"texts": [("good dog", "the cat"), ("bad dog", "a mat")] * 4,
             "labels": np.array([1, 0] * 4)}
    calls = []

    def score(labels, logits):
        calls.append(logits.shape)
        return {"accuracy": float(np.mean(logits.argmax(-1) == labels))}

    trained, scores = finetuning.fine_tune_classifier(
        preset, {"train": split, "dev": split, "test": split}, 2, score,
        task="pairs", epochs=2, batch_size=4, max_sequence_length=8,
        jit_compile="false", verbose=0,
    )
    assert [h["epoch"] for h in scores["history"]] == [1, 2]
    assert scores["dev"] == scores["history"][-1]["dev"]
    assert 0 <= scores["test"]["accuracy"] <= 1
    assert (scores["task"], scores["train_examples"]) == ("pairs", 8)
    # The paper's small-model defaults, as `size_of` reads the backbone.
    assert scores["learning_rate"] == 3e-4 and scores["layer_decay"] == 0.8
    assert calls == [(8, 2)] * 3
    assert trained.preprocessor is not None
    with pytest.raises(ValueError, match="'dev'"):
        finetuning.fine_tune_classifier(preset, {"train": split}, 2, score)


def test_data_prepared_once(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat .\nthe dog ran .\n\na bad dog .\n")
    vocab = str(tmp_path / "vocab.txt")
    tokenizer = prepare_vocabulary([str(corpus)], vocab, vocabulary_size=60)
    first = open(vocab).read()
    # Found the second time: the given vocabulary is not copied over it.
    other = tmp_path / "other.txt"
    other.write_text("\n".join(keras_electra.pretraining.SPECIAL_TOKENS) + "\n")
    again = prepare_vocabulary([str(corpus)], vocab, vocabulary=str(other))
    assert open(vocab).read() == first
    assert again.get_vocabulary() == tokenizer.get_vocabulary()
    # A given vocabulary is copied, checked first.
    copied = prepare_vocabulary([], str(tmp_path / "copy.txt"),
                                vocabulary=str(other))
    assert copied.vocabulary_size() == 5
    examples = str(tmp_path / "examples")
    prepare_examples([str(corpus)], tokenizer, examples, max_sequence_length=8)
    written = sorted(os.listdir(examples))
    assert "metadata.json" in written
    prepare_examples([], tokenizer, examples)  # found: nothing rewritten
    assert sorted(os.listdir(examples)) == written


def test_write_in_domain_corpus(tmp_path):
    reviews = {
        "train": {"texts": ["Fun.", "Dull.", "Long."],
                  "movie_names": ["b", "a", "b"]},
        "unlabeled": ["A plot. It ends well.", "   "],
    }
    path = write_in_domain_corpus(reviews, str(tmp_path / "in_domain.txt"))
    assert open(path).read() == (
        "Dull.\n\nFun.\nLong.\n\nA plot.\nIt ends well.\n\n"
    )
    with pytest.raises(ValueError, match="unlabeled"):
        write_in_domain_corpus({"train": reviews["train"]}, path)
