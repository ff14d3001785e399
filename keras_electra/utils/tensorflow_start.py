"""Load TensorFlow with `TF_CPP_MIN_LOG_LEVEL` applied to its first lines.

TensorFlow 2.21 logs through Abseil, and the lines it writes while its
libraries load come before Abseil's logging is set up: they reach stderr
whatever `TF_CPP_MIN_LOG_LEVEL` says. On a CPU-only Linux machine that is
six lines on every `import keras_electra`, whichever the Keras backend
(keras-hub loads TensorFlow for its tokenizers):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796673514.006743    5599 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796673514.007876    5599 cudart_stub.cc:31] Could not find cuda drivers ...

(and the same three again). `import_tensorflow()` loads TensorFlow with the
process' stderr caught in a temporary file, then writes back every line the
setting lets through. `keras_electra` calls it before anything imports
TensorFlow. Nothing changes where the setting is unset or 0, where
TensorFlow is loaded already or not installed.

Nothing imported here loads TensorFlow, Keras or the rest of the package.
"""

import importlib.util
import os
import re
import sys
import tempfile

# An Abseil log line: severity letter, date, time, thread, file:line].
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog()"
# A Python warning as `warnings` prints it: path:line: Category: message.
_PYTHON_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
_SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0, 1, 2, 3 hide those below


def import_tensorflow():
    """Import TensorFlow; its load-time log lines below
    `TF_CPP_MIN_LOG_LEVEL` are dropped.

    A script gets this by importing `keras_electra` before Keras (which
    loads TensorFlow itself on the TensorFlow backend), as the recipes do.

    Example:
    ```python
    from keras_electra.utils.tensorflow_start import import_tensorflow

    import_tensorflow()  # importing keras_electra has loaded it: a no-op
    ```
    """
    level = min_log_level()
    if (
        level == 0
        or "tensorflow" in sys.modules
        or importlib.util.find_spec("tensorflow") is None
    ):
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as caught:
        stderr = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(stderr, 2)
            os.close(stderr)
            caught.seek(0)
            text = caught.read().decode("utf-8", errors="replace")
            sys.stderr.write(kept_lines(text, level))
            sys.stderr.flush()


def min_log_level():
    """`TF_CPP_MIN_LOG_LEVEL` as TensorFlow reads it: 0 to 3; 0 if unset or
    not a number."""
    value = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    return min(int(value), 3) if value.isdigit() else 0


def kept_lines(text, level):
    """The lines of `text` that `TF_CPP_MIN_LOG_LEVEL=level` lets through:
    Abseil log lines of a lower severity are dropped with the lines that
    continue them (up to the next log line, preamble or Python warning),
    and Abseil's preamble with them when no log line is left; anything else
    is kept as it was.

    Example:
    ```python
    from keras_electra.utils.tensorflow_start import kept_lines

    text = (
        "I0000 00:00:1.5 7 port.cc:153] oneDNN custom operations are on.\n"
        "E0000 00:00:1.6 7 util.cc:131] oneDNN supports DT_INT64 only ...\n"
    )
    kept_lines(text, 2)  # only the E line
    ```
    """
    kept, dropped, logged, dropping = [], False, False, False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            dropping = _SEVERITIES.index(match.group(1)) < level
            dropped, logged = dropped or dropping, logged or not dropping
        elif line.startswith(_ABSL_PREAMBLE) or _PYTHON_WARNING.match(line):
            dropping = False
        if not dropping:
            kept.append(line)
    if dropped and not logged:
        kept = [line for line in kept if not line.startswith(_ABSL_PREAMBLE)]
    return "".join(kept)
