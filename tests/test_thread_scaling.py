"""benchmarks/thread_scaling.py on tiny sizes: every piece of the encoder
layer is timed on 1 core and on several, on the suite's backend, and bad
arguments are refused before any worker starts."""

import json

import pytest

from conftest import backend
from scripts import load_script

thread_scaling = load_script("benchmarks/thread_scaling.py")

TINY = ["--batch-size", "2", "--sequence-length", "8", "--hidden-dim", "8",
        "--num-heads", "2", "--intermediate-dim", "16", "--warmup", "1",
        "--repeats", "1"]


def test_every_piece_is_timed_on_one_core_and_on_several(tmp_path, capsys):
    output = tmp_path / "scaling.json"
    thread_scaling.main(
        ["--backends", backend(), "--cores", "1", "--output", str(output)]
        + TINY
    )
    result = json.loads(output.read_text())
    rows = result["rows"]
    assert [row["piece"] for row in rows] == list(thread_scaling.PIECES)
    for row in rows:
        assert row["backend"] == backend()
        assert row["ms_1_core"] > 0 and row["gflops"] > 0
        assert row["speedup"] == pytest.approx(
            row["ms_1_core"] / row["ms_1_cores"]
        )
    assert result["sizes"]["hidden_dim"] == 8
    assert "| layer train |" in capsys.readouterr().out


def test_the_flop_counts_follow_the_sizes():
    args = thread_scaling.build_parser().parse_args(TINY)
    flops = thread_scaling.piece_flops(args)
    # 2 x 8 tokens, 8 wide: 2 * 2 * 64 * 8 for the scores.
    assert flops["scores"] == 2 * 2 * 8 * 8 * 8
    assert flops["dense"] == 2 * 16 * 8 * 16
    assert flops["layer train"] == 3 * flops["layer forward"]


@pytest.mark.parametrize(
    "flags, text",
    [
        (["--backends", "numpy"], "--backends"),
        (["--cores", "0"], "--cores"),
        (["--hidden-dim", "10", "--num-heads", "4"], "multiple"),
        (["--repeats", "0"], "--repeats"),
    ],
)
def test_bad_arguments_are_refused(flags, text):
    with pytest.raises(ValueError, match=text):
        thread_scaling.main(flags)
