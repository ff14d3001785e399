"""benchmarks/pretraining_budget.py on tiny fixtures: `prepare` writes the
demo's data as arrays, the pre-training worker snapshots the encoder at (or
just past) each target step, the fine-tuning workers share the jobs, and the
table sums them up (no network: the demo's data sources are local fixtures,
and the demo's model is shrunk)."""

import json
import math
import os
import random
import time
from argparse import Namespace

import keras
import numpy as np
import pytest

from conftest import random_sentences

import keras_electra
from keras_electra import data as datasets
from keras_electra.training import runs
from scripts import load_script

budget = load_script("benchmarks/pretraining_budget.py")

WORDS = "the a cat dog sat ran on mat good bad fine awful great dull".split()


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """The demo's data sources and settings, shrunk for the module's tests;
    yields the .npz `prepare` wrote."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield shrunk_demo(tmp_path_factory.mktemp("demo"), monkeypatch)


def shrunk_demo(tmp_path, monkeypatch):
    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join(
            "\n".join(random_sentences(rng, 12, WORDS)) for _ in range(6)
        )
        + "\n"
    )

    def split(count):
        return {
            "texts": random_sentences(rng, count, WORDS),
            "labels": np.arange(count, dtype="int32") % 2,
            "movie_names": [f"film{i % 3}" for i in range(count)],
        }

    reviews = {
        "train": split(24), "dev": split(8), "test": split(8),
        "unlabeled": ["A plot. It ends well."],
    }
    monkeypatch.setattr(datasets, "demo_corpus", lambda: [str(corpus)])
    monkeypatch.setattr(datasets, "movie_reviews", lambda seed: reviews)
    monkeypatch.setitem(
        keras_electra.presets, runs.DEMO_PRESET,
        {
            **keras_electra.presets[runs.DEMO_PRESET],
            "backbone": {
                **keras_electra.presets[runs.DEMO_PRESET]["backbone"],
                "num_layers": 1, "hidden_dim": 16, "num_heads": 2,
                "embedding_dim": 16, "intermediate_dim": 32,
            },
        },
    )
    for name, value in {
        "vocabulary_size": 80, "max_sequence_length": 24, "batch_size": 4,
        "in_domain_copies": 2,
    }.items():
        monkeypatch.setitem(runs.DEMO_PRETRAINING, name, value)
    monkeypatch.setitem(runs.DEMO_FINETUNING, "max_sequence_length", 16)
    monkeypatch.setitem(runs.DEMO_FINETUNING, "epochs", 1)
    data = tmp_path / "budget.npz"
    budget.main(
        ["prepare", "--data", str(data), "--work-dir", str(tmp_path / "work")]
    )
    return str(data)


def test_prepare_writes_the_demo_data_as_arrays(small_demo):
    data = budget.load_data(small_demo)
    vocabulary = list(data["vocabulary"])
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    token_ids = data["pretrain_token_ids"]
    assert token_ids.shape[1] == 24 and len(token_ids) > 0
    assert token_ids.max() < len(vocabulary)
    assert (token_ids[:, 0] == vocabulary.index("[CLS]")).all()
    # Padding is exactly where the ids are [PAD].
    np.testing.assert_array_equal(data["pretrain_padding_mask"], token_ids != 0)
    for split, count in (("train", 24), ("dev", 8), ("test", 8)):
        assert data[f"{split}_token_ids"].shape == (count, 16)
        assert data[f"{split}_segment_ids"].shape == (count, 16)
        np.testing.assert_array_equal(
            data[f"{split}_labels"], np.arange(count) % 2
        )


# PyTorch runs one step per execution only.
STEPS_PER_EXECUTION = 1 if keras.config.backend() == "torch" else 5


def worker_args(data, output, **overrides):
    return Namespace(**{
        "data": data, "output": str(output), "objective": "electra",
        "objectives": "electra", "minutes": 1.0, "steps": 20,
        "snapshots": 2, "temperature": 1.0,
        "steps_per_execution": STEPS_PER_EXECUTION,
        "seeds": 1, "skip_baseline": False, "deadline": time.time() + 600,
        **overrides,
    })


def test_workers_snapshot_fine_tune_and_summarise(small_demo, tmp_path):
    output = tmp_path / "run"
    os.makedirs(output / "claims")
    args = worker_args(small_demo, output)
    budget.pretrain_worker(args)
    with open(output / "electra" / "done.json") as file:
        done = json.load(file)
    assert done["steps_run"] == 20
    # 1/3 of the run, rounded to whole executions, and the end.
    third = 5 if STEPS_PER_EXECUTION == 5 else 7
    assert done["snapshot_steps"] == [third, 20]
    assert sorted(os.listdir(output / "electra")) == [
        "done.json", f"step-{third:07d}.weights.h5", "step-0000020.weights.h5",
        "timing.json",
    ]
    budget.finetune_worker(args)
    with open(output / "finetuning.jsonl") as file:
        records = [json.loads(line) for line in file]
    assert [(r["objective"], r["step"]) for r in records] == [
        ("scratch", 0), ("electra", third), ("electra", 20)
    ]
    assert all(0 <= r["test"] <= 1 and 0 <= r["dev"] <= 1 for r in records)
    # A second worker finds every job claimed and stops.
    budget.finetune_worker(args)
    with open(output / "finetuning.jsonl") as file:
        assert len(file.readlines()) == 3

    results = budget.summarise(args, ["electra"], seconds=1.0)
    assert [(row["objective"], row["step"]) for row in results["rows"]] == [
        ("scratch", 0), ("electra", third), ("electra", 20)
    ]
    assert results["pretraining"]["electra"]["steps_run"] == 20
    assert results["model"]["num_layers"] == 1
    with open(output / "pretraining_budget.json") as file:
        assert json.load(file)["rows"] == results["rows"]


def test_snapshots_at_or_past_each_target_and_at_the_deadline(
    small_demo, tmp_path
):
    data = budget.load_data(small_demo)
    batch_size = runs.DEMO_PRETRAINING["batch_size"]
    inputs = {
        name: np.resize(values, (15 * batch_size, values.shape[1]))
        for name, values in budget.pretraining_inputs(data, None).items()
    }

    pretrainer = budget.build_pretrainer(data, "electra", 1.0)
    budget.compile_pretrainer(pretrainer, 30, STEPS_PER_EXECUTION)

    def fit(folder, targets, deadline, epochs=1):
        os.makedirs(folder)
        snapshots = budget.Snapshots(
            str(folder), targets, deadline, steps_per_epoch=15
        )
        pretrainer.fit(
            inputs, batch_size=batch_size, epochs=epochs,
            callbacks=[snapshots], verbose=0,
        )
        return sorted(os.listdir(folder))

    if STEPS_PER_EXECUTION == 5:
        # Executions end at steps 5, 10, 15: targets 7 and 8 land on 10.
        expected = [10, 15]
        stopped = 20  # after the first execution of the second fit
    else:
        expected, stopped = [7, 8, 15], 16
    assert fit(tmp_path / "a", [7, 8, 15], math.inf) == [
        f"step-{step:07d}.weights.h5" for step in expected
    ]
    # Out of time: one snapshot where training stopped.
    assert fit(tmp_path / "b", [30], 0) == [f"step-{stopped:07d}.weights.h5"]
    # Steps count on across epochs and from where the optimizer was: a target
    # in the second epoch lands on the end of its execution.
    target = stopped + 15 + 2
    landed = stopped + 15 + (5 if STEPS_PER_EXECUTION == 5 else 2)
    assert fit(tmp_path / "c", [target], math.inf, epochs=2) == [
        f"step-{landed:07d}.weights.h5"
    ]


def test_jobs_scratch_first_then_by_step_and_claimed_once(tmp_path):
    for objective, step in (("mlm", 30), ("electra", 100), ("electra", 30)):
        os.makedirs(tmp_path / objective, exist_ok=True)
        (tmp_path / objective / f"step-{step:07d}.weights.h5").write_text("")
    (tmp_path / "electra" / "step-0000200.partial.weights.h5").write_text("")
    jobs = budget.finetune_jobs(str(tmp_path), ["electra", "mlm"], seeds=2)
    assert [job[:3] for job in jobs] == [
        ("scratch", 0, 0), ("scratch", 0, 1),
        ("electra", 30, 0), ("electra", 30, 1),
        ("mlm", 30, 0), ("mlm", 30, 1),
        ("electra", 100, 0), ("electra", 100, 1),
    ]
    no_baseline = budget.finetune_jobs(
        str(tmp_path), ["electra"], seeds=1, baseline=False
    )
    assert [job[:2] for job in no_baseline] == [("electra", 30), ("electra", 100)]
    os.makedirs(tmp_path / "claims")
    assert budget.claim(str(tmp_path), jobs[0])
    assert not budget.claim(str(tmp_path), jobs[0])
    assert budget.claim(str(tmp_path), jobs[1])


@pytest.mark.parametrize(
    "flags",
    [
        [],  # no --data
        ["--data", "x.npz", "--seeds", "0"],
        ["--data", "x.npz", "--snapshots", "-1"],
        ["--data", "x.npz", "--steps-per-execution", "0"],
        ["--data", "x.npz", "--objectives", "electra,bert"],
    ],
)
def test_bad_run_flags(flags, capsys):
    with pytest.raises(SystemExit):
        budget.parse_args(["run", *flags])
    if flags:
        error = capsys.readouterr().err
        assert "must be positive" in error or "unknown --objectives" in error
