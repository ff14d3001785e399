"""With no more installed than the backend's framework, Keras and
keras-hub (no TensorFlow, no other backend, no matplotlib), everything that
works on token ids works: the models, fine-tuning and pre-training with
`fit()`, presets, checkpoints, `transformers` conversion, and the raw-text
APIs (keras-hub's WordPiece tokenizer runs in Python). The `tf.data` and
vocabulary functions say that they need TensorFlow. (keras-hub's own
requirements bring TensorFlow on Linux and macOS; a user who removes it, or
runs on Windows, gets this.)

A subprocess on the suite's backend, where importing any of those fails as
if it were not installed; any code path that reaches for one fails the
test.
"""

import os
import subprocess
import sys

import pytest

from conftest import backend
from scripts import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    backend() == "tensorflow",
    reason="Keras' TensorFlow backend is TensorFlow: only a JAX or PyTorch "
    "install can go without it",
)

# The throughput benchmark's --minimal-install runs its Keras workers so.
throughput = load_script("benchmarks/pretrain_throughput.py")
ABSENT = throughput.MINIMAL_INSTALL_ABSENT

WORKFLOW = """
import os
import sys
import tempfile

for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if not installed: every import fails

import numpy as np

import keras_electra
from keras_electra.training import checkpoints

folder = tempfile.mkdtemp()
vocabulary = keras_electra.pretraining.SPECIAL_TOKENS + [
    "the", "river", "was", "calm", "and", "clear", "storm", "broke", "old",
]
tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
assert list(tokenizer("The river")) == [5, 6]
rng = np.random.default_rng(0)
token_ids = rng.integers(5, len(vocabulary), (8, 12)).astype("int32")
token_ids[:, 0], token_ids[:, -1] = 2, 3  # [CLS] ... [SEP]
inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
          "padding_mask": np.ones_like(token_ids)}

# Pre-training on arrays, a checkpoint, a preset.
pretrainer = keras_electra.ElectraPretrainer.from_preset(
    "electra_tiny", vocab_size=len(vocabulary), max_sequence_length=12,
    num_layers=1, tokenizer=tokenizer, seed=0,
)
pretrainer.compile()
losses = pretrainer.fit(inputs, batch_size=4, epochs=2, verbose=0)
assert np.isfinite(losses.history["loss"]).all()
checkpoints.save_checkpoint(pretrainer, os.path.join(folder, "ckpt"), step=2)
preset = os.path.join(folder, "preset")
pretrainer.save_to_preset(preset)

# The raw-text APIs.
generator = keras_electra.ElectraGenerator.from_preset(preset)
assert len(generator.fill_mask("the [MASK] was calm", top_k=2)[0][0]) == 2
discriminator = keras_electra.ElectraDiscriminator.from_preset(preset)
scores = discriminator.score_tokens("the river was calm")[0]
assert [token for token, _ in scores] == ["the", "river", "was", "calm"]

# Fine-tuning on arrays, from the preset.
for model in (
    keras_electra.ElectraTextClassifier.from_preset(preset, num_classes=2),
    keras_electra.ElectraTokenClassifier.from_preset(preset, num_classes=3),
    keras_electra.ElectraQuestionAnswerer.from_preset(preset),
):
    outputs = model.predict(inputs, verbose=0)
    targets = {
        "ElectraTextClassifier": np.arange(8) % 2,
        "ElectraTokenClassifier": token_ids % 3,
        "ElectraQuestionAnswerer": (np.ones(8, "int32"), np.full(8, 2)),
    }[type(model).__name__]
    model.fit(inputs, targets, batch_size=4, verbose=0)

# To transformers and back.
towers = {}
for tower in ("discriminator", "generator"):
    towers[tower] = os.path.join(folder, tower)
    keras_electra.export_to_transformers(
        getattr(pretrainer, tower), towers[tower],
        tokenizer=pretrainer.tokenizer,
    )
back = keras_electra.pretrainer_from_transformers(**towers)
np.testing.assert_allclose(
    back.discriminator.predict(inputs, verbose=0),
    pretrainer.discriminator.predict(inputs, verbose=0), atol=1e-5,
)

# What needs TensorFlow says so.
for name, call in [
    ("train_vocabulary", lambda: keras_electra.train_vocabulary("x", 100)),
    ("write_pretraining_shards",
     lambda: keras_electra.write_pretraining_shards("x", tokenizer, folder)),
    ("pretraining_dataset",
     lambda: keras_electra.pretraining_dataset(folder, batch_size=2)),
]:
    try:
        call()
    except ImportError as error:
        assert f"`{name}` needs TensorFlow" in str(error), error
    else:
        raise AssertionError(f"{name} ran without TensorFlow")
print("WORKFLOW DONE")
"""


def test_array_workflows_run_in_a_minimal_install(tmp_path):
    script = tmp_path / "workflow.py"
    script.write_text(WORKFLOW)
    env = dict(os.environ, KERAS_BACKEND=backend())
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p
    )
    result = subprocess.run(
        [sys.executable, str(script), ",".join(ABSENT[backend()])],
        env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WORKFLOW DONE" in result.stdout
