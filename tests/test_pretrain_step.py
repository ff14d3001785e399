"""benchmarks/pretrain_step.py: `--demo` times the demo's own model and
settings, and refuses to be mixed with a preset."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import pretrain_step  # noqa: E402


def test_demo_times_the_demos_model(tmp_path, monkeypatch):
    demo = pretrain_step.demo
    # A smaller stand-in for the demo's settings keeps the test quick; the
    # benchmark must read them, whatever they are.
    monkeypatch.setattr(demo, "DEMO_MODEL", {**demo.DEMO_MODEL, "num_layers": 1})
    monkeypatch.setattr(demo, "DEMO_PRETRAINING", {
        **demo.DEMO_PRETRAINING, "vocabulary_size": 500,
        "max_sequence_length": 16, "batch_size": 4,
    })
    output = tmp_path / "step.json"
    pretrain_step.main(
        ["--demo", "--steps", "2", "--warmup-steps", "1",
         "--jit-compile", "auto", "--output", str(output)]
    )
    result = json.loads(output.read_text())
    assert (result["preset"], result["vocab_size"]) == ("demo", 500)
    assert (result["sequence_length"], result["batch_size"]) == (16, 4)
    assert result["step_ms"] > 0


@pytest.mark.parametrize("flag", [["--quick"], ["--preset", "electra_tiny"]])
def test_demo_is_not_mixed_with_a_preset(flag):
    with pytest.raises(SystemExit):
        pretrain_step.parse_args(["--demo", *flag])
