"""benchmarks/electra_vs_mlm.py on tiny fixtures: equal compute per
objective, every checkpoint and seed fine-tuned and probed frozen, the
discriminator's curves, results written, and an interrupted run picks up
where it stopped (no network: the data sources
are replaced by small local fixtures)."""

import json
import os
import random

import numpy as np
import pytest

from conftest import backend, random_sentences

from keras_electra.training import runs
from scripts import load_script

electra_vs_mlm = load_script("benchmarks/electra_vs_mlm.py")

# The benchmark's own code (budgets, checkpoints, seeds, curves, results,
# resuming) is the same on every backend; the pre-training and fine-tuning
# it calls are tested on all three elsewhere (test_pretrainer.py,
# test_text_classifier.py). Six minutes a backend: TensorFlow only.
pytestmark = pytest.mark.skipif(
    backend() != "tensorflow",
    reason="backend-free benchmark bookkeeping over library code tested on "
    "every backend elsewhere",
)

WORDS = "the a cat dog sat ran on mat house big small red blue green".split()


def sentences(rng, count):
    return random_sentences(rng, count, WORDS)


def score_for_real_once(name, calls):
    """The benchmark's `name` ("finetune_run" or "frozen_run") that records
    each call's `(preset, seed, from_scratch)` in `calls`, runs for real the
    first time and then repeats that first result: one real fine-tuning and
    one real probe cover the glue (the library code under them is tested on
    every backend elsewhere), and the other nine of each, nearly three
    minutes on 2 cores, only have to be asked for the right presets."""
    real = getattr(electra_vs_mlm, name)
    results = []

    def score(args, preset, seed, from_scratch=False):
        assert os.path.isfile(os.path.join(preset, "config.json")), preset
        calls.append((preset, seed, from_scratch))
        if not results:
            results.append(real(args, preset, seed, from_scratch))
        return dict(results[0])

    return score


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small run of the whole benchmark: `(work folder, result, calls)`,
    `calls` being what was fine-tuned and probed; the data sources stay
    replaced while the module's tests use it."""
    tmp_path = tmp_path_factory.mktemp("electra_vs_mlm")
    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join("\n".join(sentences(rng, 6)) for _ in range(12)) + "\n"
    )

    def split(count):
        return {
            "texts": sentences(rng, count),
            "labels": np.arange(count, dtype="int32") % 2,
            "movie_names": [f"film{i % 3}" for i in range(count)],
        }

    reviews = {"train": split(16), "dev": split(8), "test": split(8),
               "unlabeled": ["A plot. It ends well."]}
    datasets = electra_vs_mlm.datasets
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "demo_corpus", lambda: [str(corpus)])
        patch.setattr(datasets, "movie_reviews", lambda seed: reviews)
        patch.setitem(runs.DEMO_FINETUNING, "max_sequence_length", 16)
        calls = {name: [] for name in ("finetune_run", "frozen_run")}
        for name, recorded in calls.items():
            patch.setattr(electra_vs_mlm, name,
                          score_for_real_once(name, recorded))
        yield tmp_path, run(tmp_path), calls


def run(tmp_path, *extra):
    return electra_vs_mlm.main(
        ["--objectives", "electra,mlm", "--seeds", "2", "--electra-steps", "12",
         "--checkpoints", "2", "--num-layers", "1", "--hidden-dim", "16",
         "--vocabulary-size", "80", "--max-sequence-length", "24",
         "--batch-size", "4", "--in-domain-copies", "1",
         "--finetuning-epochs", "1", "--jit-compile", "false",
         "--temperature", "2",
         "--work-dir", str(tmp_path / "work"),
         "--output", str(tmp_path / "result.json"), *extra]
    )


def test_equal_compute_every_checkpoint_and_seed(finished_run):
    tmp_path, result, calls = finished_run
    runs = result["runs"]
    # Per seed: the baseline and 2 checkpoints of each objective.
    assert len(runs) == 2 * (1 + 2 * 2)
    # Each fine-tuned and probed once, on its own preset: the untrained
    # architecture from scratch, then each checkpoint's own.
    recorded = calls["finetune_run"]
    assert calls["frozen_run"] == recorded
    assert len(recorded) == len(runs)
    assert len({preset for preset, _, from_scratch in recorded
                if not from_scratch}) == 2 * 2 * 2
    assert [(seed, from_scratch) for _, seed, from_scratch in recorded] == [
        (seed, index == 0) for seed in range(2) for index in range(5)
    ]
    final = {r["objective"]: r for r in runs if r["checkpoint"] == 2}
    budget = result["budget_pflops"]
    assert final["electra"]["pflops"] == pytest.approx(budget)
    # MLM has no generator: more steps for the same compute (within the
    # rounding to whole checkpoint intervals).
    assert final["mlm"]["steps"] > final["electra"]["steps"]
    mlm_step = final["mlm"]["pflops"] / final["mlm"]["steps"]
    assert abs(final["mlm"]["pflops"] - budget) <= 2 * mlm_step
    for r in runs:
        assert 0 <= r["test_accuracy"] <= 1
        assert 0 <= r["frozen_test_accuracy"] <= 1
        assert 0 <= r["frozen_dev_accuracy"] <= 1
    assert "discriminator_accuracy" in final["electra"]["pretraining_logs"]
    assert "mlm_accuracy" in final["mlm"]["pretraining_logs"]
    rows = {(r["objective"], r["checkpoint"]): r for r in result["rows"]}
    assert rows[("electra", 2)]["seeds"] == 2
    assert rows[("none", 0)]["test_std"] >= 0
    assert rows[("none", 0)]["frozen_test_std"] >= 0
    assert rows[("none", 0)]["discriminator_loss"] is None
    with open(tmp_path / "result.json") as file:
        saved = json.load(file)
    assert saved["table"] == result["table"]
    assert "frozen test" in result["table"]
    assert saved["settings"]["temperature"] == 2
    assert final["electra"]["temperature"] == 2
    assert "| electra | 12 |" in result["curve_table"]
    assert os.path.getsize(tmp_path / "result.png") > 0


def test_discriminator_curves(finished_run):
    _, result, _ = finished_run
    runs = {(r["objective"], r["seed"], r["checkpoint"]): r
            for r in result["runs"]}
    for seed in range(2):
        first = runs[("electra", seed, 1)]
        final = runs[("electra", seed, 2)]
        curve = final["discriminator_curve"]
        steps = [point["steps"] for point in curve]
        assert steps == sorted(set(steps))
        assert steps[-1] == final["steps"]
        # Each checkpoint's curve is the run's up to it.
        assert first["discriminator_curve"][-1]["steps"] == first["steps"]
        assert curve[:len(first["discriminator_curve"])] == first[
            "discriminator_curve"]
        for point in curve:
            assert point["discriminator_loss"] > 0
            assert 0 <= point["discriminator_recall"] <= 1
            assert 0 <= point["discriminator_precision"] <= 1
        # The stretches of the second interval average to its logged loss.
        second = [p for p in curve if p["steps"] > first["steps"]]
        starts = [first["steps"]] + [p["steps"] for p in second[:-1]]
        interval = final["steps"] - first["steps"]
        mean = sum(
            p["discriminator_loss"] * (p["steps"] - start)
            for p, start in zip(second, starts)
        ) / interval
        assert mean == pytest.approx(
            final["pretraining_logs"]["discriminator_loss"], rel=1e-4
        )
        assert not runs[("mlm", seed, 2)].get("discriminator_curve")
    row = next(r for r in result["rows"]
               if (r["objective"], r["checkpoint"]) == ("electra", 2))
    ends = [runs[("electra", seed, 2)]["discriminator_curve"][-1]
            for seed in range(2)]
    for name in ("discriminator_loss", "discriminator_recall",
                 "discriminator_precision"):
        assert row[name] == pytest.approx(sum(e[name] for e in ends) / 2)


def test_a_finished_run_is_not_repeated(finished_run, monkeypatch):
    tmp_path, first, _ = finished_run

    def fail(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(electra_vs_mlm, "pretrain_run", fail)
    monkeypatch.setattr(electra_vs_mlm, "finetune_run", fail)
    again = run(tmp_path)
    assert again["rows"] == first["rows"]


def test_bad_flags():
    with pytest.raises(SystemExit):
        electra_vs_mlm.parse_args(["--objectives", "electra,bert"])
    with pytest.raises(SystemExit):
        electra_vs_mlm.parse_args(["--objectives", "electra+shared"])
    with pytest.raises(SystemExit):
        electra_vs_mlm.parse_args(["--checkpoints", "5", "--electra-steps", "4"])
    with pytest.raises(SystemExit):
        electra_vs_mlm.parse_args(["--temperature", "0"])


def test_objectives_with_embedding_sharing():
    args = electra_vs_mlm.parse_args(["--objectives", "electra,electra+gdes"])
    assert args.objectives == ["electra", "electra+gdes"]
    assert electra_vs_mlm.split_objective("electra+gdes") == ("electra", "gdes")
    assert electra_vs_mlm.split_objective("mlm") == ("mlm", None)


def test_runs_at_another_temperature_are_not_reused(tmp_path):
    path = tmp_path / "runs.jsonl"
    finished = [{"objective": "none"}, {"objective": "mlm"},
                {"objective": "electra"},  # recorded before temperatures: 1
                {"objective": "electra+gdes", "temperature": 3.0}]
    path.write_text("".join(json.dumps(run) + "\n" for run in finished))

    def kept(temperature):
        return [run["objective"] for run in
                electra_vs_mlm.load_finished(str(path), temperature)]

    assert kept(1.0) == ["none", "mlm", "electra"]
    assert kept(3.0) == ["none", "mlm", "electra+gdes"]
