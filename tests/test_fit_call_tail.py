"""benchmarks/fit_call_tail.py: times `fit` calls over both pipelines,
alternating, and reports each call's steps and tail."""

import json

from scripts import load_script

fit_call_tail = load_script("benchmarks/fit_call_tail.py")


def test_times_both_pipelines_call_by_call(tmp_path, capsys):
    output = tmp_path / "tail.json"
    fit_call_tail.main(
        ["--preset", "electra_tiny", "--vocab-size", "500",
         "--sequence-length", "16", "--batch-size", "2", "--steps", "2",
         "--calls", "2", "--output", str(output)]
    )
    result = json.loads(output.read_text())
    assert list(result["calls"]) == list(fit_call_tail.VARIANTS)
    for name, calls in result["calls"].items():
        assert len(calls) == 2
        assert all(call["step_seconds"] > 0 for call in calls)
        assert all(call["tail_seconds"] >= 0 for call in calls)
        summary = result["summary"][name]
        tails = [call["tail_seconds"] for call in calls]
        assert summary["max_tail_seconds"] == max(tails)
        assert summary["seconds_in_tails"] == round(sum(tails), 3)
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in fit_call_tail.VARIANTS)
