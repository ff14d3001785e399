"""Every example in the library's docstrings runs as written."""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import tempfile
import textwrap

import pytest

import keras_electra

EXAMPLES = [
    (module.name, index, textwrap.dedent(block))
    for module in pkgutil.walk_packages(
        keras_electra.__path__, prefix="keras_electra."
    )
    for index, block in enumerate(
        re.findall(
            r"```python\n(.*?)```",
            inspect.getsource(importlib.import_module(module.name)),
            re.S,
        )
    )
]


# Their examples change the whole process (malloc, JAX's dispatch) and must
# come first in it, as a user's script calls them: a fresh process each.
FRESH_PROCESS_MODULES = {"keras_electra.utils.memory"}


@pytest.mark.parametrize(
    "name, code", [(name, code) for name, _, code in EXAMPLES],
    ids=[f"{name}-{index}" for name, index, _ in EXAMPLES],
)
def test_docstring_example_runs(name, code, tmp_path, monkeypatch):
    if name in FRESH_PROCESS_MODULES:
        subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
        return
    # The examples write into `tempfile.mkdtemp()` folders, as a user's
    # would; here those land in pytest's temporary folder, which it prunes.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exec(compile(code, "<docstring>", "exec"), {})


def test_examples_were_found():
    assert len(EXAMPLES) >= 20
