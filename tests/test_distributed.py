"""Distributed pre-training on CPU, one engine per backend.

Each backend's engine needs a fresh process (JAX reads XLA_FLAGS once at
import, TensorFlow fixes its logical devices at start-up, torch DDP runs one
process per replica), so `tests/distributed_worker.py` does the training and
these tests compare what it wrote:

* JAX, 2 forced host devices: `DataParallel` gives the single-device losses
  and weights, random masking and dropout included (one SPMD program over
  the global batch draws what one device draws); `ModelParallel` shards the
  kernels and still gives the same numbers.
* TensorFlow, 2 logical CPUs: `MirroredStrategy` gives the single-device
  losses and weights on the same global batch; replicas draw different masks.
* torch, 2 `torchrun` processes (gloo): both ranks end with identical
  weights, equal to one process on the global batch; ranks draw different
  masks.

Replicas that draw their own masks (TF, torch) cannot match one device
draw for draw, so their comparison uses a pretrainer whose step does not
depend on the draws (every candidate token masked with [MASK], near-zero
sampling temperature, no dropout); the masking itself is checked on a batch
whose two halves hold the same rows.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import backend
from keras_electra.training import distribution

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "distributed_worker.py")
HALF = 4
TIMEOUT = 300


def _run(command, env_overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env_overrides)
    try:
        done = subprocess.run(
            command,
            env=env,
            cwd=os.path.dirname(HERE),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{command} took more than {TIMEOUT}s:\n{error.stderr}")
    if done.returncode:
        pytest.fail(
            f"{' '.join(command)} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )


def _arrays(weights):
    return [np.asarray(w) for w in weights]


def assert_same_training(actual, expected, what, rtol=1e-5, atol=1e-6):
    for key in ("loss", "generator_loss", "discriminator_loss"):
        np.testing.assert_allclose(
            actual["logs"][key],
            expected["logs"][key],
            rtol=rtol,
            err_msg=f"{what}: per-step {key}",
        )
    actual_weights = _arrays(actual["weights"])
    expected_weights = _arrays(expected["weights"])
    assert len(actual_weights) == len(expected_weights)
    for a, e in zip(actual_weights, expected_weights):
        np.testing.assert_allclose(a, e, atol=atol, err_msg=f"{what}: weights")


def assert_trained(result):
    losses = result["logs"]["loss"]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert losses[0] != losses[-1]


def assert_halves_masked_differently(masked_token_ids, what):
    masked = np.asarray(masked_token_ids)
    first, second = masked[:HALF], masked[HALF:]
    assert first.shape == second.shape
    assert not np.array_equal(first, second), (
        f"{what}: both replicas masked the same rows identically"
    )


# === API (every backend) ===


def test_kind_of_another_backend_names_what_each_backend_supports():
    other = {"jax": "mirrored", "tensorflow": "ddp", "torch": "data_parallel"}
    with pytest.raises(ValueError) as error:
        with distribution.distribution_scope(other[backend()]):
            pass
    message = str(error.value)
    for kind in ("data_parallel", "model_parallel", "mirrored", "ddp"):
        assert kind in message
    with pytest.raises(ValueError, match="Unknown distribution kind"):
        with distribution.distribution_scope("horovod"):
            pass


def test_none_kind_is_a_single_device():
    with distribution.distribution_scope("none") as dist:
        assert dist.num_replicas == 1 and dist.is_chief
        data = {"token_ids": np.arange(20).reshape(10, 2)}
        shard = dist.shard(data, global_batch_size=4)
        # The last partial global batch is dropped.
        np.testing.assert_array_equal(shard["token_ids"], data["token_ids"][:8])
        assert dist.fit_batch_size(4) == 4


# === JAX ===

jax_only = pytest.mark.skipif(
    backend() != "jax", reason="keras.distribution runs on JAX only"
)


@pytest.fixture(scope="module")
def jax_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax") / "result.json"
    _run(
        [sys.executable, WORKER, "jax", str(out)],
        {
            "KERAS_BACKEND": "jax",
            # Two CPU devices; the fast XLA compile keeps the test short.
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2 "
            "--xla_backend_optimization_level=0 "
            "--xla_llvm_disable_expensive_passes=true",
        },
    )
    with open(out) as f:
        return json.load(f)


@jax_only
def test_jax_data_parallel_equals_one_device(jax_results):
    assert jax_results["num_replicas"] == 2
    # Variables replicated on both devices.
    assert jax_results["data_parallel_weight_devices"] == [2]
    assert_trained(jax_results["single_random"])
    assert_same_training(
        jax_results["data_parallel_random"],
        jax_results["single_random"],
        "DataParallel vs one device (random masks, dropout)",
    )


@jax_only
def test_jax_data_parallel_masks_each_shard_differently(jax_results):
    assert_halves_masked_differently(
        jax_results["data_parallel_masks"], "DataParallel"
    )


@jax_only
def test_jax_model_parallel_shards_encoder_and_embedding(jax_results):
    shardings = jax_results["model_parallel_shardings"]
    attention = "transformer_layer_0/self_attention_layer/"
    # One embedding table, shared by the towers.
    assert shardings["token_embedding/embeddings"] == [["None", "model"]]
    expected = {
        attention + "query/kernel": ["None", "None", "model"],
        attention + "key/kernel": ["None", "None", "model"],
        attention + "value/kernel": ["None", "None", "model"],
        attention + "attention_output/kernel": ["None", "model", "None"],
        "transformer_layer_0/feedforward_intermediate_dense/kernel": [
            "None",
            "model",
        ],
        "transformer_layer_0/feedforward_output_dense/kernel": [
            "model",
            "None",
        ],
    }
    for path, spec in expected.items():
        # Both towers (discriminator, and generator under "generator/").
        assert shardings.get(path) == [spec], path
        assert shardings.get("generator/" + path) == [spec], path
    # Half of the embedding table on each device.
    assert jax_results["model_parallel_local_shapes"] == {
        "token_embedding/embeddings": [[160, 4], [160, 4]]
    }
    # The optimizer's slots follow their variables.
    momentum = [p for p in shardings if p.endswith("query_kernel_momentum")]
    assert len(momentum) == 2  # one per tower
    for path in momentum:
        assert shardings[path] == [["None", "None", "model"]]
    assert_same_training(
        jax_results["model_parallel_random"],
        jax_results["single_random"],
        "ModelParallel vs one device",
    )


# === TensorFlow ===

tensorflow_only = pytest.mark.skipif(
    backend() != "tensorflow", reason="tf.distribute runs on TensorFlow only"
)


@pytest.fixture(scope="module")
def tensorflow_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensorflow") / "result.json"
    _run(
        [sys.executable, WORKER, "tensorflow", str(out)],
        {"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""},
    )
    with open(out) as f:
        return json.load(f)


@tensorflow_only
def test_tensorflow_mirrored_equals_one_device(tensorflow_results):
    assert tensorflow_results["num_replicas"] == 2
    assert tensorflow_results["mirrored_variable_type"] == "MirroredVariable"
    single = tensorflow_results["single_exact"]
    mirrored = tensorflow_results["mirrored_exact"]
    assert_trained(single)
    ratio = mirrored["logs"]["loss"][0] / single["logs"]["loss"][0]
    assert not np.isclose(ratio, 2.0), (
        "The mirrored loss is twice the single-device loss: "
        "ElectraPretrainer.compute_loss must return "
        "keras_electra.training.distribution.scale_loss_for_replicas(loss), or the "
        "replicas' gradients add up to twice the update."
    )
    assert_same_training(mirrored, single, "MirroredStrategy vs one device")
    # ELECTRA's AdamW: its fused update and weight decay on every replica.
    assert tensorflow_results["adamw_class"] == "FusedAdamW"
    assert_trained(tensorflow_results["single_exact_adamw"])
    assert_same_training(
        tensorflow_results["mirrored_exact_adamw"],
        tensorflow_results["single_exact_adamw"],
        "MirroredStrategy vs one device, AdamW",
    )


@tensorflow_only
def test_tensorflow_mirrored_replicas_mask_differently(tensorflow_results):
    # What `prepare` fixes: the replicas share one seed-generator state and,
    # left alone, mask identical rows identically.
    unprepared = np.asarray(tensorflow_results["mirrored_masks_unprepared"])
    assert np.array_equal(unprepared[:HALF], unprepared[HALF:])
    assert_halves_masked_differently(
        tensorflow_results["mirrored_masks"], "MirroredStrategy"
    )


# === torch ===

torch_only = pytest.mark.skipif(
    backend() != "torch", reason="torch.distributed runs on torch only"
)


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch")
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            WORKER,
            "torch",
            str(out),
        ],
        {"KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""},
    )
    results = []
    for rank in (0, 1):
        with open(out / f"rank{rank}.json") as f:
            results.append(json.load(f))
    return results


@torch_only
def test_torch_ddp_ranks_agree_and_equal_one_process(torch_results):
    rank0, rank1 = torch_results
    assert rank0["num_replicas"] == 2 and rank0["backend"] == "gloo"
    for mode in ("exact", "random"):
        for w0, w1 in zip(
            _arrays(rank0[f"ddp_{mode}"]["weights"]),
            _arrays(rank1[f"ddp_{mode}"]["weights"]),
        ):
            np.testing.assert_array_equal(w0, w1, err_msg=f"{mode}: ranks")
    single = rank0["single_exact"]
    assert_trained(single)
    # Each rank logs its own half's loss; their mean is the global loss.
    ddp = {
        "logs": {
            key: np.mean(
                [rank["ddp_exact"]["logs"][key] for rank in torch_results],
                axis=0,
            )
            for key in ("loss", "generator_loss", "discriminator_loss")
        },
        "weights": rank0["ddp_exact"]["weights"],
    }
    assert_same_training(ddp, single, "DDP vs one process")


@torch_only
def test_torch_ddp_ranks_mask_differently(torch_results):
    rank0, rank1 = torch_results
    both = rank0["ddp_masks"] + rank1["ddp_masks"]
    assert_halves_masked_differently(both, "DDP")
