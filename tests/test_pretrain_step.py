"""benchmarks/pretrain_step.py: `--demo` times the demo's own model and
settings, and refuses to be mixed with a preset; `--profile-ops` lists the
costliest operators on PyTorch."""

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


def test_profile_lists_the_costliest_operators_on_torch(tmp_path, capsys):
    import keras

    argv = ["--preset", "electra_tiny", "--vocab-size", "500",
            "--sequence-length", "16", "--batch-size", "2", "--steps", "2",
            "--warmup-steps", "1", "--jit-compile", "auto",
            "--profile-ops", "4", "--output", str(tmp_path / "step.json")]
    if keras.config.backend() != "torch":
        # torch.profiler only; the other backends' profilers write traces.
        with pytest.raises(SystemExit):
            pretrain_step.parse_args(argv)
        assert "KERAS_BACKEND=torch" in capsys.readouterr().err
        return
    pretrain_step.main(argv)
    profile = json.loads((tmp_path / "step.json").read_text())["profile"]
    assert len(profile) == 4
    times = [row["self_ms_per_step"] for row in profile]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    assert any(row["operator"].startswith("aten::") for row in profile)
    assert profile[0]["operator"] in capsys.readouterr().out
