"""Tiny fixtures shared by the suite: small configs, a few fake sentences."""

import os
import warnings

# The suite's models are tiny, so on JAX (and TensorFlow with XLA) most of
# its time is compiling, not running: skip LLVM's expensive optimisations
# (test_pretrainer.py and test_objectives.py on JAX, 2 cores: 178 -> 126 s).
# Subprocesses inherit it.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
)

# keras_electra before Keras, which loads TensorFlow on its backend: it
# applies TF_CPP_MIN_LOG_LEVEL to TensorFlow's first lines.
import keras_electra  # noqa: E402  # isort: skip

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_electra.data import cache_dir  # noqa: E402

# What the tiny models compile to, kept between runs in JAX's persistent
# cache: the suite compiles the same small programs over and over (on JAX,
# 2 cores: 1,158 s without it, 922 s from an empty cache, 437 s from a full
# one; about 70 MB). Set in the environment for the recipes that tests
# start, and in this process, where JAX is already imported. Entries of
# every size and compile time are kept. No size bound: with one, JAX scans
# the whole folder on every write, which made the pass slower than none.
# Without its lock, an entry read while the other worker writes it fails
# to decompress, and JAX compiles instead.
JAX_COMPILATION_CACHE = {
    "jax_compilation_cache_dir": os.path.join(
        cache_dir(), "jax-test-compilations"
    ),
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}
for name, value in JAX_COMPILATION_CACHE.items():
    os.environ.setdefault(name.upper(), str(value))
    if keras.config.backend() == "jax":
        import jax

        jax.config.update(name, type(value)(os.environ[name.upper()]))

PAD, CLS, SEP, MASK = 0, 101, 102, 103
VOCAB_SIZE = 160
TINY = dict(
    vocab_size=VOCAB_SIZE,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    embedding_dim=8,
    intermediate_dim=32,
    max_sequence_length=32,
)


def tiny_backbone(**overrides):
    return keras_electra.ElectraBackbone(**{**TINY, **overrides})


def tiny_pretrainer(seed=0, backbone_overrides=None, **kwargs):
    backbone = tiny_backbone(**(backbone_overrides or {}))
    kwargs.setdefault("generator_size", 0.5)
    return keras_electra.ElectraPretrainer(backbone, seed=seed, **kwargs)


def tiny_batch(batch_size=8, length=24, seed=0, num_padded=6):
    """Sentences `[CLS] a b c [SEP] d e [SEP] [PAD]...` with ragged padding."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(MASK + 1, VOCAB_SIZE, size=(batch_size, length))
    segment_ids = np.zeros((batch_size, length), "int32")
    padding_mask = np.ones((batch_size, length), "int32")
    for row in range(batch_size):
        real = length - (row % 2) * num_padded
        middle = real // 2
        token_ids[row, 0] = CLS
        token_ids[row, middle] = SEP
        token_ids[row, real - 1] = SEP
        token_ids[row, real:] = PAD
        segment_ids[row, middle + 1 : real] = 1
        padding_mask[row, real:] = 0
    return {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }


def count_calls(monkeypatch, module, name):
    """Wraps `module.name` for the test so that each call is recorded;
    returns the list of recorded positional arguments."""
    calls = []
    function = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def count_train_steps(model):
    """Record each run of `model.train_step`'s Python code: once per trace
    where the step is compiled, once per batch where it runs eagerly."""
    runs = []
    train_step = model.train_step

    def counted(*args):
        runs.append(None)
        return train_step(*args)

    model.train_step = counted
    return runs


def without_torch_codegen(monkeypatch):
    """On torch, `jit_compile=True` is `torch.compile`: keep Dynamo's graph
    capture (what runs through our Python) and AOTAutograd, but skip
    Inductor's C++ code generation, a minute or more on 2 CPUs. Elsewhere,
    nothing."""
    if keras.config.backend() != "torch":
        return
    import functools

    import torch

    monkeypatch.setattr(
        torch, "compile", functools.partial(torch.compile, backend="aot_eager")
    )
    # Dynamo's note on an `lru_cache` in Keras' dtype lattice: Keras' code,
    # not ours (pytest restores the filters after the test).
    warnings.filterwarnings(
        "ignore",
        message="Dynamo detected a call to a `functools.lru_cache`",
        category=UserWarning,
    )


def numpy_tree(tree):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


@pytest.fixture(autouse=True)
def _reset_policy_and_seed():
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


def backend():
    return os.environ.get("KERAS_BACKEND", keras.config.backend())


def repetitive_corpus(size, length=16):
    """The same few sentences over and over: easy to learn."""
    sentences = [
        [CLS, 110, 111, 112, 113, 114, SEP, 115, 116, 117, SEP],
        [CLS, 120, 121, 122, 123, SEP, 124, 125, 126, 127, 128, SEP],
        [CLS, 130, 131, 132, 133, 134, 135, 136, SEP],
    ]
    token_ids = np.zeros((size, length), "int32")
    for row in range(size):
        sentence = sentences[row % len(sentences)]
        token_ids[row, : len(sentence)] = sentence
    return {"token_ids": token_ids}


def random_sentences(rng, count, words):
    """`count` sentences of 3-9 words drawn by `rng` (a `random.Random`)."""
    return [
        " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + "."
        for _ in range(count)
    ]
