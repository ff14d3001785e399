"""The command-line recipes: every flag documented, and a few-step run of
each on tiny local inputs (no network: the demo's data sources are replaced
by small fixtures)."""

import json
import os
import random

import numpy as np
import pytest

from conftest import random_sentences
from keras_electra.training import finetuning
from keras_electra.training import runs
from keras_electra.utils import file_io
from scripts import load_script

demo = load_script("recipes/demo.py")
finetune = load_script("recipes/finetune.py")
pretrain = load_script("recipes/pretrain.py")
squad = load_script("recipes/squad.py")

WORDS = "the a cat dog sat ran on mat house big small red blue green".split()
# Tiny model flags shared by the runs below. The runs pass `--jit-compile
# auto`: XLA on JAX, where running a step op by op costs more than compiling
# it; no XLA on TensorFlow (CPU) and PyTorch, as with `false`.
TINY_MODEL = [
    "--size", "tiny", "--num-layers", "1", "--hidden-dim", "16",
    "--num-heads", "2", "--embedding-dim", "8", "--intermediate-dim", "32",
]


def sentences(rng, count):
    return random_sentences(rng, count, WORDS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    documents = ["\n".join(sentences(rng, 6)) for _ in range(12)]
    path.write_text("\n\n".join(documents) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("run"))
    preset = pretrain.main(
        ["--corpus", corpus, "--output", output, "--vocabulary-size", "80",
         "--max-sequence-length", "24", "--batch-size", "4", "--steps", "4",
         "--checkpoint-every", "2", "--jit-compile", "auto", "--verbose",
         "0", "--temperature", "2.5", "--curves-every", "1", *TINY_MODEL]
    )
    return output, preset


def test_pretrain_fits_a_time_budget_with_its_callbacks(
    corpus, tmp_path, capsys
):
    output = str(tmp_path / "run")
    pretrain.main(
        ["--corpus", corpus, "--output", output, "--vocabulary-size", "80",
         "--max-sequence-length", "24", "--batch-size", "4", "--minutes",
         "0.25", "--checkpoint-every", "5", "--jit-compile", "auto",
         "--verbose", "0", *TINY_MODEL]
    )
    printed = capsys.readouterr().out
    assert "s per checkpoint and plot" in printed
    assert "(budget 0.25 min, " in printed
    with open(os.path.join(output, "run.json")) as file:
        run = json.load(file)
    # A whole number of checkpoint intervals of at most --checkpoint-every
    # steps, never rounded up past the budget.
    assert 1 <= run["steps_per_epoch"] <= 5
    assert run["total_steps"] % run["steps_per_epoch"] == 0


def test_pretrain_says_when_the_budget_leaves_no_time_to_train(
    corpus, tmp_path, capsys
):
    # Timing and compiling alone take longer than 0.6 s: the run takes its
    # one step anyway, and the overrun is not blamed on slow steps.
    pretrain.main(
        ["--corpus", corpus, "--output", str(tmp_path / "run"),
         "--vocabulary-size", "80", "--max-sequence-length", "24",
         "--batch-size", "4", "--minutes", "0.01", "--jit-compile", "auto",
         "--verbose", "0", *TINY_MODEL]
    )
    printed = capsys.readouterr().out
    assert "The budget leaves no time to train" in printed
    assert "running 1 step(s) anyway" in printed
    assert "(budget 0.01 min, +" in printed
    assert "ran slower than timed" not in printed


@pytest.mark.parametrize("recipe", [pretrain, finetune, squad, demo])
def test_every_flag_is_explained(recipe, capsys):
    parser = recipe.build_parser()
    undocumented = [
        action.option_strings
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert not undocumented
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_pretrain_writes_everything_and_resumes(pretrained, corpus):
    output, preset = pretrained
    for name in ("vocab.txt", "run.json", "curves.csv", "pretraining_curves.png"):
        assert os.path.exists(os.path.join(output, name)), name
    assert sorted(os.listdir(os.path.join(output, "checkpoints"))) == [
        "ckpt-00000002",
        "ckpt-00000004",
    ]
    assert os.path.exists(os.path.join(output, "examples", "metadata.json"))
    assert os.listdir(os.path.join(output, "logs"))  # TensorBoard events
    assert os.path.exists(os.path.join(preset, "generator"))
    with open(os.path.join(preset, "pretrainer.json")) as file:
        assert json.load(file)["temperature"] == 2.5
    # Running again finds the finished run: nothing is retrained, even
    # when the run was saved before a flag existed (it takes its default).
    run_file = os.path.join(output, "run.json")
    with open(run_file) as file:
        run = json.load(file)
    del run["arguments"]["temperature"]
    with open(run_file, "w") as file:
        json.dump(run, file)
    again = pretrain.main(
        ["--corpus", corpus, "--output", output, "--jit-compile", "auto",
         "--verbose", "0", *TINY_MODEL]
    )
    assert again == preset
    with open(os.path.join(output, "curves.csv")) as file:
        assert len(file.read().strip().splitlines()) == 1 + 4  # header + steps


def test_pretrain_rejects_bad_flags(corpus, tmp_path):
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--output", str(tmp_path)])  # no corpus
    with pytest.raises(SystemExit):
        pretrain.parse_args(
            ["--corpus", corpus, "--output", str(tmp_path), "--steps", "0"]
        )
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--demo-corpus", "wikipedia", "--output", "x"])


def test_pretrain_embedding_sharing_flag(corpus, tmp_path):
    output = ["--corpus", corpus, "--output", str(tmp_path)]
    assert pretrain.parse_args(output).embedding_sharing is None
    args = pretrain.parse_args(
        output + ["--embedding-sharing", "gdes", "--preset", "electra_tiny"]
    )
    assert pretrain.build_pretrainer(args, None).embedding_sharing == "gdes"
    with pytest.raises(SystemExit):
        pretrain.parse_args(output + ["--embedding-sharing", "shared"])


def test_pretrain_demo_corpus_sources(corpus, tmp_path):
    output = ["--output", str(tmp_path)]
    # Alone: the default sources; with names: those.
    assert pretrain.parse_args(["--demo-corpus", *output]).demo_corpus == []
    chosen = pretrain.parse_args(["--demo-corpus", "imdb", "sotu", *output])
    assert chosen.demo_corpus == ["imdb", "sotu"]
    files_only = pretrain.parse_args(output + ["--corpus", corpus])
    assert files_only.demo_corpus is None
    # A run.json from before the flag took names holds a bool.
    for saved, expected in ((True, []), (False, None)):
        with open(tmp_path / pretrain.RUN_FILE, "w") as file:
            json.dump({"arguments": {"demo_corpus": saved}}, file)
        args = pretrain.parse_args(output + ["--demo-corpus"])
        assert pretrain.saved_arguments(args).demo_corpus == expected


def write_classification_files(directory):
    rng = random.Random(1)
    paths = {}
    for split, count in (("train", 24), ("dev", 8)):
        path = directory / f"{split}.csv"
        rows = ["sentence,label"]
        for index in range(count):
            label = index % 2
            words = sentences(rng, 1)[0][:-1] + (" red" if label else " blue")
            rows.append(f"{words},{label}")
        path.write_text("\n".join(rows) + "\n")
        paths[split] = str(path)
    return paths


def test_write_json_never_leaves_half_a_file(tmp_path):
    path = str(tmp_path / "scores.json")
    file_io.write_json(path, {"accuracy": 0.5})
    # Not JSON-serialisable: the dump fails part-way through.
    with pytest.raises(TypeError):
        file_io.write_json(path, {"accuracy": 0.75, "model": object()})
    assert json.load(open(path)) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["scores.json"]


def test_finetune_writes_scores(pretrained, tmp_path):
    _, preset = pretrained
    files = write_classification_files(tmp_path)
    output = str(tmp_path / "finetune")
    scores = finetune.main(
        ["--preset", preset, "--train-file", files["train"],
         "--dev-file", files["dev"], "--test-file", files["dev"],
         "--epochs", "1", "--batch-size", "8", "--max-sequence-length", "16",
         "--jit-compile", "auto", "--output", output, "--verbose", "0"]
    )
    with open(os.path.join(output, "scores.json")) as file:
        saved = json.load(file)
    assert saved["test"]["accuracy"] == scores["test"]["accuracy"]
    assert 0 <= saved["dev"]["accuracy"] <= 1
    assert [epoch["epoch"] for epoch in saved["history"]] == [1]
    assert saved["train_examples"] == 24


def test_finetune_reinitializes_only_the_top_layers():
    import keras_electra

    backbone = keras_electra.ElectraBackbone(
        vocab_size=40, num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=8, intermediate_dim=32, max_sequence_length=16,
    )
    before = [w.copy() for w in backbone.get_weights()]
    paths = [w.path for w in backbone.weights]
    finetuning.reinitialize_top_layers(backbone, 1)
    for path, old, new in zip(paths, before, backbone.get_weights()):
        if path.startswith("transformer_layer_1/") and path.endswith("kernel"):
            assert not np.array_equal(old, new), path
        elif not path.startswith("transformer_layer_1/"):
            np.testing.assert_array_equal(old, new, err_msg=path)
    with pytest.raises(ValueError, match="reinitialize-layers"):
        finetuning.reinitialize_top_layers(backbone, 3)


def test_finetune_max_train_examples_is_one_fixed_subset():
    split = {"texts": [f"text {i}" for i in range(20)],
             "labels": np.arange(20, dtype="int32")}
    first = finetuning.subset(split, 5)
    assert first["texts"] == [f"text {i}" for i in first["labels"]]
    assert list(first["labels"]) == sorted(first["labels"])  # file order
    assert len(set(first["labels"])) == 5
    np.testing.assert_array_equal(finetuning.subset(split, 5)["labels"],
                                  first["labels"])


def test_squad_trains_and_scores(pretrained, tmp_path):
    _, preset = pretrained
    contexts = ["the cat sat on the mat .", "a big dog ran to the house ."]
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [{
            "id": f"q{index}", "question": "where ?",
            "answers": [{"text": context.split()[-2],
                         "answer_start": context.rindex(context.split()[-2])}],
        }]}
        for index, context in enumerate(contexts)
    ]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    scores = squad.main(
        ["--preset", preset, "--train-file", str(path), "--dev-file",
         str(path), "--max-sequence-length", "24", "--doc-stride", "8",
         "--max-question-length", "4", "--epochs", "1", "--jit-compile", "auto", "--output",
         str(tmp_path / "out"), "--verbose", "0"]
    )
    assert set(scores) == {"exact_match", "f1"}
    with open(tmp_path / "out" / "predictions.json") as file:
        assert set(json.load(file)) == {"q0", "q1"}


def demo_fixtures(corpus, monkeypatch):
    """The demo on the test corpus and fixture reviews, at a tiny scale."""
    rng = random.Random(2)

    def split(count):
        texts = sentences(rng, count)
        return {
            "texts": texts,
            "labels": np.arange(count, dtype="int32") % 2,
            "movie_names": [f"film{i % 3}" for i in range(count)],
        }

    reviews = {
        "train": split(24), "dev": split(8), "test": split(24),
        "unlabeled": ["A plot. It ends well."],
    }
    monkeypatch.setattr(demo.datasets, "demo_corpus", lambda: [corpus])
    monkeypatch.setattr(demo.datasets, "movie_reviews", lambda seed: reviews)
    for name, value in {
        "vocabulary_size": 80, "max_sequence_length": 24, "batch_size": 4,
        "jit_compile": "auto",
    }.items():
        monkeypatch.setitem(runs.DEMO_PRETRAINING, name, value)
    monkeypatch.setitem(runs.DEMO_FINETUNING, "max_sequence_length", 16)
    return reviews


def check_demo_summary(summary, output):
    for mode in ("fine_tuned", "frozen_encoder"):
        for accuracy in summary["accuracy"][mode].values():
            assert set(accuracy) == {"dev", "test"}
            assert all(0 <= value <= 1 for value in accuracy.values())
        assert set(summary["accuracy"][mode]) == {"electra", "from_scratch"}
    assert list(summary["minutes"]) == [
        "data", "pretraining", "inspection", "fine_tuning",
        "frozen_encoders", "total",
    ]
    assert summary["minutes"]["total"] >= sum(
        v for k, v in summary["minutes"].items() if k != "total"
    ) - 0.05
    assert os.path.exists(output / "summary.json")
    page = (output / "inspection.html").read_text()
    assert page.startswith("<!DOCTYPE html>") or "<html" in page


def test_demo_end_to_end_on_fixtures(corpus, tmp_path, monkeypatch, capsys):
    reviews = demo_fixtures(corpus, monkeypatch)
    summary = demo.main(
        ["--steps", "2", "--num-layers", "1", "--hidden-dim", "16",
         "--finetuning-epochs", "1", "--output", str(tmp_path)]
    )
    check_demo_summary(summary, tmp_path)
    printed = capsys.readouterr().out
    # The sections, in the order the issue gives them.
    sections = [
        "== 1/6 Data", "movie reviews: train 24",
        "== 2/6 Pre-training", "against always answering 'original'",
        "== 3/6 What the discriminator sees", "inspection.html",
        "== 4/6 What the generator fills in", "the generator: ",
        "== 5/6 Fine-tuning: electra", "== 6/6 Fine-tuning: from scratch",
        "frozen encoders", "| model | dev | test |",
        "benchmarks/RESULTS.md", "Done in",
    ]
    places = [printed.find(section) for section in sections]
    assert -1 not in places, [s for s, p in zip(sections, places) if p < 0]
    assert places == sorted(places)
    # Five test sentences inspected, none of them in the pre-training corpus.
    inspected = summary["inspection"]
    assert 0 <= inspected["replaced_fraction"] <= 1
    in_domain = (tmp_path / "in_domain.txt").read_text()
    assert not any(t in in_domain for t in demo.short_texts(
        reviews["test"]["texts"], 5))
    # Training snippets grouped by film (3 films) plus one plot summary.
    documents = in_domain.split("\n\n")
    assert len([d for d in documents if d.strip()]) == 3 + 1


def test_demo_continues_a_transformers_checkpoint_pair(
    corpus, tmp_path, monkeypatch, capsys
):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    demo_fixtures(corpus, monkeypatch)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    common = dict(
        vocab_size=len(vocabulary), embedding_size=8, num_hidden_layers=1,
        max_position_embeddings=32, hidden_act="gelu",
    )
    torch.manual_seed(0)
    discriminator = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(
            hidden_size=16, num_attention_heads=2, intermediate_size=32,
            **common,
        )
    )
    generator = transformers.ElectraForMaskedLM(
        transformers.ElectraConfig(
            hidden_size=8, num_attention_heads=1, intermediate_size=32,
            **common,
        )
    )
    # A released pair shares its embeddings.
    generator.electra.embeddings.load_state_dict(
        discriminator.electra.embeddings.state_dict()
    )
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    folders = {}
    for name, model in (("d", discriminator), ("g", generator)):
        model.save_pretrained(str(tmp_path / name))
        tokenizer.save_pretrained(str(tmp_path / name))
        folders[name] = str(tmp_path / name)
    # Fine-tuning and probing a pre-trained preset are the same here as in
    # test_demo_end_to_end_on_fixtures, which runs them; this test asks for
    # the continued preset to reach them.
    scored = []

    def fine_tune_classifier(preset, splits, *args, from_scratch, **kwargs):
        scored.append((preset, from_scratch))
        return None, {split: {"accuracy": 0.5} for split in splits}

    def frozen_encoder_accuracy(preset, reviews, seed):
        scored.append((preset, "frozen"))
        return {name: {"dev": 0.5, "test": 0.5}
                for name in ("electra", "from_scratch")}

    monkeypatch.setattr(demo, "fine_tune_classifier", fine_tune_classifier)
    monkeypatch.setattr(demo, "frozen_encoder_accuracy",
                        frozen_encoder_accuracy)
    output = tmp_path / "demo"
    summary = demo.main(
        ["--preset", folders["d"], "--generator-preset", folders["g"],
         "--steps", "2", "--finetuning-epochs", "1", "--output", str(output)]
    )
    check_demo_summary(summary, output)
    preset = str(output / "pretraining" / "preset")
    assert scored == [(preset, False), (preset, True), (preset, "frozen")]
    printed = capsys.readouterr().out
    assert f"{folders['d']} + " in printed  # the table names the checkpoint
    with open(output / "pretraining" / "preset" / "pretrainer.json") as file:
        settings = json.load(file)
    assert settings["temperature"] == 1.0  # the paper's, not the demo's 3
    # The checkpoint's vocabulary, not a newly trained one.
    assert not (output / "pretraining" / "vocab.txt").exists()
    with pytest.raises(SystemExit):
        demo.parse_args(["--generator-preset", folders["g"]])


