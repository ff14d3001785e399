"""Whether bfloat16 compute pays (`keras_electra.utils.precision`): measured
on the suite's backend, once per process, with a warning wherever a model is
built to compute in bfloat16 on a device whose bfloat16 products are far
slower than float32 ones."""

import warnings

import keras
import pytest

import keras_electra
from keras_electra.training import runs
from keras_electra.utils import precision


@pytest.fixture
def measured(monkeypatch):
    """A fresh process's state, with the measurement replaced: returns a
    function that sets the slowdown and counts the measurements."""
    monkeypatch.setattr(precision, "_measured", None)
    calls = []

    def set_slowdown(value):
        monkeypatch.setattr(
            precision, "bfloat16_slowdown",
            lambda: calls.append(value) or value,
        )
        return calls

    return set_slowdown


def tiny_backbone(dtype=None):
    return keras_electra.ElectraBackbone.from_preset(
        "electra_tiny", vocab_size=200, num_layers=1, dtype=dtype
    )


def test_a_bfloat16_backbone_warns_once_where_bfloat16_is_far_slower(
    measured,
):
    # PyTorch without the CPU's bfloat16 instructions: a generic loop.
    calls = measured(52.4)
    with pytest.warns(RuntimeWarning, match=r"take 52 times as long") as seen:
        tiny_backbone(dtype="mixed_bfloat16")
    assert "Use float32" in str(seen[0].message)
    # Once per process: neither measured nor said again, whatever builds it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_backbone(dtype="mixed_bfloat16")
        keras_electra.ElectraPretrainer.from_preset(
            "electra_tiny", vocab_size=200, num_layers=1,
            dtype="mixed_bfloat16",
        )
    assert calls == [52.4]


def test_the_global_policy_counts_as_well(measured):
    calls = measured(52.4)
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        with pytest.warns(RuntimeWarning, match="52 times"):
            tiny_backbone()
    finally:
        keras.config.set_dtype_policy("float32")
    assert calls == [52.4]


def test_no_warning_where_bfloat16_keeps_up_and_no_measurement_in_float32(
    measured,
):
    calls = measured(1.2)  # converted to float32 (XLA on the same CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_backbone()
        tiny_backbone(dtype="float16")
        assert calls == []  # nothing to check: nothing measured
        tiny_backbone(dtype="mixed_bfloat16")
        tiny_backbone(dtype="bfloat16")
    assert calls == [1.2]


def test_use_mixed_bfloat16_sets_the_policy_and_checks_at_once(measured):
    calls = measured(52.4)
    try:
        with pytest.warns(RuntimeWarning, match="take 52 times as long"):
            assert runs.use_mixed_bfloat16() == 52.4
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert runs.use_mixed_bfloat16() == 52.4
            tiny_backbone()
    finally:
        keras.config.set_dtype_policy("float32")
    assert calls == [52.4]


def test_the_bfloat16_slowdown_is_measured_on_the_backend(monkeypatch):
    products = []
    matmul = keras.ops.matmul
    monkeypatch.setattr(
        keras.ops, "matmul",
        lambda a, b: products.append(keras.backend.standardize_dtype(a.dtype))
        or matmul(a, b),
    )
    assert precision.bfloat16_slowdown(size=32) > 0
    # A warmup and 3 timed products in each precision.
    assert products == ["float32"] * 4 + ["bfloat16"] * 4
