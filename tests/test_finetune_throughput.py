"""benchmarks/pretrain_throughput.py's fine-tuning tables, run with a tiny
model: each task model's training step and `predict` against its
transformers counterpart, with the task's FLOPs.

The script starts its own Keras and transformers workers whatever
KERAS_BACKEND says, so it runs in the torch pass of the suite alone (the
Makefile runs the suite once per backend); the task models themselves are
tested on every backend in their own files."""

import json
import math
import subprocess
import sys
import time

import pytest

from conftest import backend
from keras_electra.pretraining import flops
from scripts import assert_mfu_matches_its_row
from scripts import load_script

pytestmark = pytest.mark.skipif(
    backend() != "torch",
    reason="the script picks its own backends: one pass of the suite runs it",
)

throughput = load_script("benchmarks/pretrain_throughput.py")


def test_each_task_gets_a_table_against_its_transformers_model(tmp_path):
    output = tmp_path / "finetune.json"
    tasks = ["token_classifier", "question_answerer"]
    # One thread: two pytest workers share two cores. The Keras workers run
    # as a minimal install (the GPU table's test runs them as they are).
    status = throughput.main(
        ["--skip-pretrain", "--quick", "--backends", "torch", "--tasks",
         ",".join(tasks), "--preset", "electra_tiny", "--vocab-size", "512",
         "--batch-size", "2", "--sequence-length", "16", "--warmup-steps",
         "1", "--chunk-steps", "1", "--rounds", "1", "--matmul-size", "256",
         "--threads", "1", "--minimal-install", "--output", str(output)]
    )
    assert status == 0
    result = json.loads(output.read_text())
    rows = result["variants"]
    assert result["machine"]["outside_cores_busy"] >= 0
    assert [(row["section"], row["variant"]) for row in rows] == [
        ("token_classifier", "keras-torch-token-classifier/fp32"),
        ("token_classifier", "hf-torch-eager-token-classifier/fp32"),
        ("question_answerer", "keras-torch-question-answerer/fp32"),
        ("question_answerer", "hf-torch-eager-question-answerer/fp32"),
    ]
    peak = result["peak_flops"]["fp32"]
    for row in rows:
        task = row["section"]
        for phase in ("train", "predict"):
            stats = row[phase]
            assert stats["model_flops_per_step"] == flops.finetuning_step_flops(
                task, result["discriminator"], 2, 16,
                num_classes=throughput.TASKS[task][2] or 2,
                training=phase == "train",
            )
            assert_mfu_matches_its_row(stats, peak)
            assert stats["vs_hf_fp32"] > 0
        # Its work after set-up: the train chunk, predict's untimed first
        # step, the predict chunk and its exit.
        assert len(row["busy_spans"]) == 4
        # Every worker, Keras and transformers, kept its freed memory.
        assert row["details"]["allocator_environment"] == (
            throughput.ALLOCATORS["retain"]
        )
        if row["variant"].startswith("hf"):
            assert row["train"]["vs_hf_fp32"] == 1
            assert row["predict"]["vs_hf_fp32"] == 1
        else:
            # A training step ran on the task's targets: a finite loss.
            assert math.isfinite(row["details"]["loss_last"])
            assert row["details"]["imported"] == ["torch"]
    # After set-up no worker worked while another did, so nothing overlapped
    # a timed chunk: not predict's first step, the end of fit(), an exit.
    spans = sorted(
        (start, end, row["variant"])
        for row in rows
        for start, end in row["busy_spans"]
    )
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        assert end <= start, f"{first} was still busy when {second} began"
    for table in result["tables"]:
        assert "| peak RSS MB | RSS after imports MB | peak - imports MB |" in (
            table
        )
    assert [table.splitlines()[0] for table in result["tables"]] == [
        "**token_classifier**: ElectraTokenClassifier vs "
        "ElectraForTokenClassification, train step and predict",
        "**question_answerer**: ElectraQuestionAnswerer vs "
        "ElectraForQuestionAnswering, train step and predict",
    ]


def test_a_minimal_install_is_refused_for_the_tensorflow_backend(capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(
            ["--backends", "jax,tensorflow", "--minimal-install"]
        )
    assert "--minimal-install: the tensorflow backend" in (
        capsys.readouterr().err
    )


def test_an_unknown_task_is_refused(capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(["--tasks", "classifier,ranker"])
    assert "--tasks: 'ranker' is not one of" in capsys.readouterr().err


def test_the_allocator_settings_replace_the_shells():
    shell = {"PATH": "/bin", "MALLOC_ARENA_MAX": "4", "MALLOC_TOP_PAD_": "1"}
    retain = throughput.allocator_environment("retain", shell)
    assert retain == {
        "PATH": "/bin",
        "MALLOC_TOP_PAD_": "1",
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30),
    }
    # glibc's defaults: none of the benchmark's variables, whatever the
    # shell set.
    glibc = throughput.allocator_environment("glibc", shell)
    assert glibc == {"PATH": "/bin", "MALLOC_TOP_PAD_": "1"}
    assert shell["MALLOC_ARENA_MAX"] == "4"


def test_a_product_too_slow_for_the_time_is_measured_at_the_probe_size():
    sizes_run = []

    def products(seconds_per_flop):
        def at(n):
            def run():
                sizes_run.append(n)
                time.sleep(2 * n**3 * seconds_per_flop)

            return run

        return at

    # 1e12 FLOP/s: a 1024 product takes 2 ms, within the 10 ms.
    flops, size = throughput._best_flops(
        products(1e-12), 1024, lambda product: product, 0.01, probe_size=256
    )
    assert size == 1024
    assert sizes_run.count(1024) >= 4  # a warmup, then at least 3 timed
    assert 1e11 < flops <= 1e12
    # 1e9 FLOP/s (bfloat16 emulated): a 1024 product would take 2 s.
    sizes_run.clear()
    flops, size = throughput._best_flops(
        products(1e-9), 1024, lambda product: product, 0.01, probe_size=256
    )
    assert size == 256
    assert set(sizes_run) == {256}
    assert 1e8 < flops <= 1e9


def test_other_processes_cpu_time_is_what_this_one_and_its_workers_did_not_use():
    # 50 s of busy CPUs in 20 s, 40 of them this process's and its
    # workers': others kept half a core busy.
    assert throughput.outside_cores_busy((100.0, 10.0), (150.0, 50.0), 20) == 0.5
    assert throughput.outside_cores_busy(None, (150.0, 50.0), 20) is None
    # A finished worker's CPU time counts as the benchmark's own.
    before = throughput.cpu_seconds()
    subprocess.run(
        [sys.executable, "-c",
         "import time\nend = time.process_time() + 0.3\n"
         "while time.process_time() < end: pass"],
        check=True,
    )
    after = throughput.cpu_seconds()
    assert after[1] - before[1] >= 0.3
    assert after[0] - before[0] >= 0.25


@pytest.mark.parametrize(
    "load_at_start, outside, warned",
    [
        (1.3, 0.01, False),  # jobs that ended before the start
        (0.1, 0.6, True),  # others alongside, though quiet at the start
        (1.3, None, True),  # no /proc/stat: the load average decides
        (0.1, None, False),
    ],
)
def test_the_warning_for_other_jobs_follows_their_cpu_time(
    capsys, load_at_start, outside, warned
):
    args = throughput.parse_args(["--threads", "2"])
    machine = {
        "cpu": {"model": "AMD EPYC", "avx512_bf16": False, "amx_bf16": False,
                "cores_available": 2,
                "load_average_at_start": (load_at_start, 1.0, 1.0)},
        "load_average_at_end": (2.0, 1.5, 1.0),
        "outside_cores_busy": outside,
    }
    throughput.print_cpu_load(args, machine)
    assert ("WARNING: other jobs were running" in capsys.readouterr().out) is (
        warned
    )
