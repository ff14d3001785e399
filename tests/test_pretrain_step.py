"""benchmarks/pretrain_step.py: `--demo` times the demo's own model and
settings, and refuses to be mixed with a preset."""

import json

import pytest

import keras_electra
from keras_electra.training import runs
from scripts import load_script

pretrain_step = load_script("benchmarks/pretrain_step.py")


def test_demo_times_the_demos_model(tmp_path, monkeypatch):
    # A smaller stand-in for the demo's settings keeps the test quick; the
    # benchmark must read them, whatever they are.
    monkeypatch.setitem(
        keras_electra.presets[runs.DEMO_PRESET]["backbone"], "num_layers", 1
    )
    for name, value in {
        "vocabulary_size": 500, "max_sequence_length": 16, "batch_size": 4,
    }.items():
        monkeypatch.setitem(runs.DEMO_PRETRAINING, name, value)
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
