"""benchmarks/input_checks.py: the cost of the input checks per kind of
input, as a table and JSON. Backend-free (the checks run on the host or in
`tf.data` whatever the Keras backend): TensorFlow only."""

import json

import pytest

from conftest import backend
from scripts import load_script

pytestmark = pytest.mark.skipif(
    backend() != "tensorflow",
    reason="the checks run on the host or in tf.data whatever the backend",
)

input_checks = load_script("benchmarks/input_checks.py")


def test_each_kind_of_input_is_timed_with_and_without_the_checks(tmp_path):
    output = tmp_path / "checks.json"
    input_checks.main(
        ["--examples", "64", "--sequence-length", "8", "--batch-size", "16",
         "--repeats", "1", "--output", str(output)]
    )
    rows = json.loads(output.read_text())["rows"]
    assert [row["input"] for row in rows] == ["arrays", "tf.data", "generator"]
    for row in rows:
        assert row["checked_seconds"] > 0
        assert row["check_ms_per_batch"] >= 0
    # Streams are read in full either way; arrays are only checked.
    assert rows[0]["unchecked_seconds"] == 0
    assert all(row["unchecked_seconds"] > 0 for row in rows[1:])


@pytest.mark.parametrize(
    "flags", [["--examples", "0"], ["--batch-size", "0"], ["--step-ms", "0"]]
)
def test_bad_sizes_are_refused(flags):
    with pytest.raises(SystemExit):
        input_checks.parse_args(flags)
