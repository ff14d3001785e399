"""benchmarks/pretrain_throughput.py's GPU table, run on the CPU with a tiny
model: the code that benchmarks/gpu_throughput.sh runs on a GPU (one worker
at a time, both transformers baselines, the peak-memory fields), with the
device "cpu".

The script starts its own JAX and PyTorch workers whatever KERAS_BACKEND
says, so it runs in the torch pass of the suite alone (the Makefile runs
the suite once per backend)."""

import json
import subprocess

import pytest

from conftest import backend
from scripts import ROOT
from scripts import assert_mfu_matches_its_row
from scripts import load_script

pytestmark = pytest.mark.skipif(
    backend() != "torch",
    reason="the script picks its own backends: one pass of the suite runs it",
)

throughput = load_script("benchmarks/pretrain_throughput.py")

VARIANTS = [
    "keras-jax/bf16",
    "keras-torch/bf16",
    "hf-torch-eager/bf16",
    "hf-torch-compile/bf16",
]


def test_the_gpu_table_times_every_variant_one_at_a_time(tmp_path):
    output = tmp_path / "gpu.json"
    # One thread: two pytest workers share two cores. aot_eager: Inductor
    # would take most of a minute to generate code for the tiny model; the
    # compile variant still goes through Dynamo and AOTAutograd.
    status = throughput.main(
        ["--gpu-table", "--device", "cpu", "--quick", "--preset",
         "electra_tiny", "--vocab-size", "512", "--batch-size", "2",
         "--sequence-length", "16", "--warmup-steps", "1", "--chunk-steps",
         "1", "--rounds", "1", "--matmul-size", "256", "--threads", "1",
         "--hf-compile-backend", "aot_eager", "--output", str(output)]
    )
    assert status == 0
    result = json.loads(output.read_text())
    assert result["failed_variants"] == []
    assert result["peak_flops"]["bf16"] > 0
    rows = result["variants"]
    assert [row["variant"] for row in rows] == VARIANTS
    for row in rows:
        train = row["train"]
        assert train["tokens_per_second"] > 0
        # Against the measured bfloat16 peak.
        assert_mfu_matches_its_row(train, result["peak_flops"]["bf16"])
        assert 0 <= train["mfu"] < 1
        assert train["vs_hf_eager_bf16"] > 0
        assert train["vs_hf_compile_bf16"] > 0
        # Measured on a GPU only.
        assert "peak_gpu_mb" in row and row["peak_gpu_mb"] is None
        assert row["peak_rss_mb"] > 0
    by_name = {row["variant"]: row for row in rows}
    assert by_name["hf-torch-eager/bf16"]["train"]["vs_hf_eager_bf16"] == 1
    assert by_name["hf-torch-compile/bf16"]["train"]["vs_hf_compile_bf16"] == 1
    assert [row["compiled"] for row in rows] == [
        "XLA", "no", "no", "torch.compile (aot_eager)"
    ]
    details = by_name["hf-torch-compile/bf16"]["details"]
    assert details["warmup_steps"] == throughput.TORCH_COMPILE_WARMUP
    assert details["graphs_compiled_while_timed"] == 0
    # Each worker exited before the next one started.
    spans = [row["process_span"] for row in rows]
    assert all(end <= next_start for (_, end), (next_start, _) in
               zip(spans, spans[1:]))
    table = result["tables"][0]
    assert "× HF eager bf16 | × HF compile bf16" in table
    assert "peak GPU MB" in table


def test_a_variant_past_the_time_limit_is_stopped_and_listed(tmp_path):
    output = tmp_path / "limit.json"
    # Importing Keras alone takes longer than the limit.
    status = throughput.main(
        ["--gpu-table", "--quick", "--backends", "torch", "--no-hf",
         "--matmul-size", "256", "--threads", "1", "--time-limit", "1",
         "--output", str(output)]
    )
    assert status == 1
    result = json.loads(output.read_text())
    assert result["variants"] == []
    [failure] = result["failed_variants"]
    assert failure["variant"] == "keras-torch/bf16"
    assert failure["error"].startswith("stopped at the time limit")
    assert "| keras-torch/bf16 | FAILED: stopped" in result["tables"][0]


def test_cuda_without_a_gpu_is_refused_with_a_message():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is there")
    with pytest.raises(SystemExit, match="PyTorch sees no CUDA GPU"):
        throughput.main(["--device", "cuda"])


def test_cuda_implies_the_gpu_table():
    args = throughput.parse_args(["--device", "cuda"])
    assert args.gpu_table and args.skip_finetune
    assert args.backends == ["jax", "torch"]
    assert args.precisions == ["bf16"]
    assert (args.batch_size, args.matmul_size) == (128, 8192)
    assert args.jit_compile == "auto" and args.torch_jit_compile == "auto"
    assert args.output.endswith("pretrain_throughput_gpu_electra_small.json")


def test_the_cpu_tables_keep_their_defaults():
    args = throughput.parse_args(["--backends", "torch"])
    assert not args.gpu_table and args.device == "cpu"
    assert args.precisions == ["fp32", "bf16"]
    assert args.torch_jit_compile == args.jit_compile == "auto"
    assert (args.batch_size, args.matmul_size) == (32, 4096)
    assert args.output.endswith("pretrain_throughput_torch.json")


def test_the_gpu_script_explains_itself():
    shown = subprocess.run(
        ["bash", "benchmarks/gpu_throughput.sh", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert "--prepare" in shown and "BUDGET" in shown
