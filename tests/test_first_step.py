"""benchmarks/first_step.py: the first pre-training step with Keras' AdamW
and with `FusedAdamW`, each in a fresh TensorFlow process."""

import json

import pytest

from conftest import backend
from scripts import load_script

first_step = load_script("benchmarks/first_step.py")


# The benchmark starts TensorFlow processes whatever the backend; running it
# from one backend's pass is enough.
@pytest.mark.skipif(
    backend() != "tensorflow", reason="measures TensorFlow's graph"
)
@pytest.mark.parametrize("model", ["pretrainer", "classifier"])
def test_times_both_optimizers_in_fresh_processes(model, tmp_path, capsys):
    output = tmp_path / "first_step.json"
    first_step.main(
        ["--model", model, "--preset", "electra_tiny", "--vocab-size", "500",
         "--sequence-length", "16", "--batch-size", "2", "--steps", "2",
         "--rounds", "1", "--output", str(output)]
    )
    result = json.loads(output.read_text())
    assert list(result["runs"]) == list(first_step.OPTIMIZERS)
    keras_run, = result["runs"]["keras.optimizers.AdamW"]
    fused_run, = result["runs"]["FusedAdamW"]
    assert keras_run["variables"] == fused_run["variables"]
    # The fused update: fewer ops per variable than Keras' dozen.
    saved = keras_run["ops_traced"] - fused_run["ops_traced"]
    assert saved > 5 * fused_run["variables"], (keras_run, fused_run)
    for name, summary in result["summary"].items():
        first, later = (
            summary["median_first_step_seconds"],
            summary["median_later_step_seconds"],
        )
        assert first > later > 0, name
        assert summary["median_update_ms"] > 0
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in first_step.OPTIMIZERS)
