"""The recipes and benchmarks, imported by the tests from their files (they
are scripts, not a package, and never import each other)."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(relative_path):
    """The module of the script at `relative_path` (from the repository
    root, e.g. "recipes/pretrain.py"), loaded once per test session."""
    name = "script_" + relative_path[: -len(".py")].replace("/", "_")
    if name not in sys.modules:
        path = os.path.join(ROOT, relative_path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def assert_mfu_matches_its_row(stats, peak):
    """`stats["mfu"]` is the row's FLOPs per step over its step time, as a
    fraction of `peak`. The JSON rounds the MFU to 1e-4 and the step to
    0.01 ms, so the bound is what those two roundings can move it by."""
    step_ms = stats["step_ms"]
    mfu = stats["model_flops_per_step"] / (step_ms / 1000) / peak
    bound = 5e-5 + mfu * 0.005 / (step_ms - 0.005)
    assert abs(stats["mfu"] - mfu) <= bound, (stats, mfu, bound)
