"""TensorFlow's load-time log lines obey TF_CPP_MIN_LOG_LEVEL
(`keras_electra.utils.tensorflow_start`)."""

import os
import re
import subprocess
import sys

import pytest

from conftest import backend
from keras_electra.utils.tensorflow_start import kept_lines
from keras_electra.utils.tensorflow_start import min_log_level

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREAMBLE = (
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n"
)
INFO = "I0000 00:00:1796675391.063926   17864 port.cc:153] oneDNN ops are on.\n"
INFO_GO_ON = (
    "I0000 00:00:1796675391.159308   17864 cpu_feature_guard.cc:227] This "
    "binary is optimized\nTo enable the following instructions: AVX2.\n"
)
ERROR = "E0000 00:00:1796674728.592012    6792 util.cc:131] No DT_INT64.\n"
PYTHON_WARNING = "/x/y.py:3: UserWarning: careful\n  import y\n"
ABSL_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)


@pytest.mark.parametrize(
    "level, kept",
    [
        (0, PREAMBLE + INFO + INFO_GO_ON + ERROR + PYTHON_WARNING),
        (1, PREAMBLE + ERROR + PYTHON_WARNING),
        (2, PREAMBLE + ERROR + PYTHON_WARNING),
        (3, PYTHON_WARNING),
    ],
)
def test_lines_below_the_level_go_with_their_continuation(level, kept):
    text = PREAMBLE + INFO + INFO_GO_ON + ERROR + PYTHON_WARNING
    assert kept_lines(text, level) == kept


def test_other_output_is_kept_as_it_was():
    text = "plain output\r\nno newline at the end"
    assert kept_lines(text, 3) == text
    assert kept_lines("", 2) == ""


@pytest.mark.parametrize(
    "value, level", [(None, 0), ("2", 2), (" 3 ", 3), ("7", 3), ("x", 0)]
)
def test_min_log_level_reads_the_environment(monkeypatch, value, level):
    if value is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", value)
    assert min_log_level() == level


def run_python(*args, level=None):
    """`python *args` from the repository on the suite's backend, with
    TF_CPP_MIN_LOG_LEVEL set to `level` (unset if None); must succeed."""
    environment = dict(os.environ, KERAS_BACKEND=backend())
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if level is not None:
        environment["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_importing_the_library_is_quiet_at_level_2():
    # TensorFlow 2.21 writes INFO lines while it loads, whatever the level.
    assert run_python("-c", "import keras_electra", level="2").stderr == ""


def test_a_recipe_starts_quietly():
    # The recipes set level 2 and import keras_electra before Keras, which
    # loads TensorFlow itself on the TensorFlow backend.
    done = run_python(os.path.join("recipes", "pretrain.py"), "--help")
    assert "usage:" in done.stdout
    assert not ABSL_LINE.search(done.stderr), done.stderr
    assert "absl::InitializeLog" not in done.stderr
