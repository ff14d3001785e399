"""Worker process for tests/test_distributed.py (one backend per run).

    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        KERAS_BACKEND=jax python tests/distributed_worker.py jax OUT.json
    KERAS_BACKEND=tensorflow python tests/distributed_worker.py \\
        tensorflow OUT.json
    KERAS_BACKEND=torch python -m torch.distributed.run --nproc_per_node=2 \\
        tests/distributed_worker.py torch OUT_DIR

Each run trains a tiny pretrainer for a few steps on one global batch, on one
device and distributed, and writes losses, weights and masks as JSON for the
test to compare. Two pretrainer set-ups:

* "exact": every candidate token masked and shown as [MASK], near-zero
  sampling temperature, no dropout: the step does not depend on the random
  streams, so replicas that draw different masks (TF, torch) still compute
  what one device computes on the global batch.
* "random": the paper's masking (and dropout), to check that replicas draw
  different masks.

The global batch is two halves with the same padding pattern (so each
replica holds as many tokens as the other and the mean of the replicas'
losses is the global loss) but different tokens (so a missing gradient
all-reduce would show).
"""

import json
import os
import sys
import time

import numpy as np

STEPS = 3
HALF = 4  # Rows per replica.
GLOBAL_BATCH = 2 * HALF
LEARNING_RATE = 0.05
CLIPNORM = 0.05  # Small enough to clip every step: checks clip-after-reduce.


_START = time.time()


def tick(what):
    """Timings on stderr, for keeping the test fast."""
    print(f"[{time.time() - _START:6.1f}s] {what}", file=sys.stderr)


def setup():
    backend, out = sys.argv[1], sys.argv[2]
    if backend == "tensorflow":
        import tensorflow as tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    return backend, out


def global_batch(identical_halves=False):
    from conftest import tiny_batch

    first = tiny_batch(batch_size=HALF, seed=0)
    second = first if identical_halves else tiny_batch(batch_size=HALF, seed=1)
    return {k: np.concatenate([first[k], second[k]]) for k in first}


def make_pretrainer(mode):
    import keras
    from conftest import tiny_pretrainer

    keras.utils.set_random_seed(1234)
    if mode == "exact":
        return tiny_pretrainer(
            seed=0,
            backbone_overrides={"dropout": 0.0},
            mask_rate=0.99,
            mask_token_rate=1.0,
            temperature=1e-9,
        )
    return tiny_pretrainer(seed=0)


def compile_sgd(pretrainer, clip=True):
    import keras

    pretrainer.compile(
        optimizer=keras.optimizers.SGD(
            LEARNING_RATE,
            momentum=0.9,  # Slot variables: sharded like their weights.
            global_clipnorm=CLIPNORM if clip else None,
        )
    )


def compile_adamw(pretrainer):
    """ELECTRA's AdamW (fused on TensorFlow), without clipping (see below)."""
    from keras_electra.models.electra_optimizer import electra_adamw

    pretrainer.compile(optimizer=electra_adamw(1e-3, weight_decay=0.01))


def train(pretrainer, data, batch_size):
    """STEPS steps (one per epoch) on `data`; per-step logs and weights."""
    import keras

    history = pretrainer.fit(
        data, batch_size=batch_size, epochs=STEPS, shuffle=False, verbose=0
    )
    return {
        "logs": {k: [float(x) for x in v] for k, v in history.history.items()},
        "weights": [
            keras.ops.convert_to_numpy(w).tolist()
            for w in pretrainer.trainable_weights
        ],
    }


def masks(pretrainer, data, batch_size):
    """The generator inputs of one forward pass (the masking is in them)."""
    import keras

    outputs = pretrainer.predict(data, batch_size=batch_size, verbose=0)
    return keras.ops.convert_to_numpy(outputs["masked_token_ids"]).tolist()


# === JAX: DataParallel and ModelParallel over 2 forced host devices ===


def run_jax(out):
    import jax

    from keras_electra.training.distribution import distribution_scope

    assert jax.device_count() == 2, jax.devices()
    batch = global_batch()
    same = global_batch(identical_halves=True)
    result = {}

    # One SPMD program over the global batch: the random draws are those of
    # one device, so the paper's random masking and dropout can be compared.
    pretrainer = make_pretrainer("random")
    compile_sgd(pretrainer)
    result["single_random"] = train(pretrainer, batch, GLOBAL_BATCH)
    tick("jax single")

    with distribution_scope("data_parallel") as dist:
        result["num_replicas"] = dist.num_replicas
        pretrainer = make_pretrainer("random")
        compile_sgd(pretrainer)
        dist.prepare(pretrainer)
        result["data_parallel_random"] = train(
            pretrainer,
            dist.shard(batch, GLOBAL_BATCH),
            dist.fit_batch_size(GLOBAL_BATCH),
        )
        result["data_parallel_weight_devices"] = sorted(
            {len(w.value.sharding.device_set) for w in pretrainer.variables}
        )
        tick("jax data parallel fit")
        result["data_parallel_masks"] = masks(pretrainer, same, GLOBAL_BATCH)
        tick("jax data parallel predict")

    with distribution_scope("model_parallel", model_parallel_size=2) as dist:
        pretrainer = make_pretrainer("random")
        compile_sgd(pretrainer)
        dist.prepare(pretrainer)
        result["model_parallel_random"] = train(pretrainer, batch, GLOBAL_BATCH)
        shardings = {}
        for variable in pretrainer.variables + pretrainer.optimizer.variables:
            spec = variable.value.sharding.spec
            if any(axis is not None for axis in spec):
                shardings.setdefault(variable.path, []).append(
                    [str(axis) for axis in spec]
                )
        result["model_parallel_shardings"] = shardings
        tick("jax model parallel")
        result["model_parallel_local_shapes"] = {
            v.path: [list(s.data.shape) for s in v.value.addressable_shards]
            for v in pretrainer.variables
            if v.path.endswith("token_embedding/embeddings")
        }
    with open(out, "w") as f:
        json.dump(result, f)


# === TensorFlow: MirroredStrategy over 2 logical CPUs ===


def run_tensorflow(out):
    import tensorflow as tf

    from keras_electra.training.distribution import distribution_scope

    batch = global_batch()
    same = global_batch(identical_halves=True)
    result = {}
    pretrainer = make_pretrainer("exact")
    # Keras' TF optimizer clips each replica's gradient before the
    # all-reduce, so clipping would make the replicas differ from one device.
    compile_sgd(pretrainer, clip=False)
    result["single_exact"] = train(pretrainer, batch, GLOBAL_BATCH)
    pretrainer = make_pretrainer("exact")
    compile_adamw(pretrainer)
    result["single_exact_adamw"] = train(pretrainer, batch, GLOBAL_BATCH)
    tick("tf single device")

    devices = ["/cpu:0", "/cpu:1"]
    with distribution_scope("mirrored", devices=devices) as dist:
        result["num_replicas"] = dist.num_replicas
        pretrainer = make_pretrainer("exact")
        compile_sgd(pretrainer, clip=False)
        dist.prepare(pretrainer)
        result["mirrored_exact"] = train(
            pretrainer,
            dist.shard(batch, GLOBAL_BATCH),
            dist.fit_batch_size(GLOBAL_BATCH),
        )
        pretrainer = make_pretrainer("exact")
        compile_adamw(pretrainer)
        dist.prepare(pretrainer)
        result["adamw_class"] = type(pretrainer.optimizer).__name__
        result["mirrored_exact_adamw"] = train(
            pretrainer,
            dist.shard(batch, GLOBAL_BATCH),
            dist.fit_batch_size(GLOBAL_BATCH),
        )
        tick("tf mirrored fits")
        # Without `prepare`, the replicas share one seed-generator state.
        plain = make_pretrainer("random")
        result["mirrored_masks_unprepared"] = masks(plain, same, GLOBAL_BATCH)
        prepared = dist.prepare(make_pretrainer("random"))
        result["mirrored_masks"] = masks(prepared, same, GLOBAL_BATCH)
        tick("tf mirrored predicts")
        result["mirrored_variable_type"] = type(
            prepared.trainable_weights[0].value
        ).__name__
    assert tf.distribute.get_strategy().num_replicas_in_sync == 1
    with open(out, "w") as f:
        json.dump(result, f)


# === torch: DDP with 2 torchrun processes (gloo) ===


def run_torch(out_dir):
    import torch.distributed as dist_lib

    from keras_electra.training.distribution import distribution_scope

    batch = global_batch()
    same = global_batch(identical_halves=True)
    result = {}
    with distribution_scope("ddp") as dist:
        rank = dist.process_index
        result["rank"] = rank
        result["num_replicas"] = dist.num_replicas
        result["backend"] = dist_lib.get_backend()
        for mode in ("exact", "random"):
            pretrainer = make_pretrainer(mode)
            compile_sgd(pretrainer)
            dist.prepare(pretrainer)
            result[f"ddp_{mode}"] = train(
                pretrainer,
                dist.shard(batch, GLOBAL_BATCH),
                dist.fit_batch_size(GLOBAL_BATCH),
            )
        tick(f"rank {rank}: ddp fits")
        # Rank r masks row i of its shard; both shards hold the same rows.
        result["ddp_masks"] = masks(
            pretrainer,
            dist.shard(same, GLOBAL_BATCH),
            dist.fit_batch_size(GLOBAL_BATCH),
        )
    assert not dist_lib.is_initialized()
    if rank == 0:
        # The single-process reference, after the group is gone.
        pretrainer = make_pretrainer("exact")
        compile_sgd(pretrainer)
        result["single_exact"] = train(pretrainer, batch, GLOBAL_BATCH)
        tick("single process")
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    backend, out = setup()
    {"jax": run_jax, "tensorflow": run_tensorflow, "torch": run_torch}[
        backend
    ](out)
