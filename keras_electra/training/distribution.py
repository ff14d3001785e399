"""Distributed pre-training on the engine each backend already has.

* JAX: `"data_parallel"` (`keras.distribution.DataParallel`) and
  `"model_parallel"` (`keras.distribution.ModelParallel` with
  `electra_layout_map`).
* TensorFlow: `"mirrored"` (`tf.distribute.MirroredStrategy`) and
  `"multi_worker_mirrored"` (`tf.distribute.MultiWorkerMirroredStrategy`).
* PyTorch: `"ddp"`: a `torch.distributed` process group (nccl on GPU, gloo
  on CPU), one process per device, launched by `torchrun`.
* Any backend: `"none"`, one device.

The recipe is the same for every kind (here "none", which runs anywhere):

```python
import numpy as np
import keras_electra
from keras_electra.training.distribution import distribution_scope

token_ids = np.random.randint(200, 1000, size=(32, 16))
token_ids[:, 0], token_ids[:, -1] = 101, 102
with distribution_scope("none") as dist:  # "data_parallel", "mirrored", "ddp"
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=1000
    )
    pretrainer.compile()
    dist.prepare(pretrainer)  # After compile(), before fit().
    data = dist.shard({"token_ids": token_ids}, global_batch_size=16)
    pretrainer.fit(
        data, batch_size=dist.fit_batch_size(16), shuffle=False, verbose=0
    )
    if dist.is_chief:  # Only one process writes.
        print(pretrainer.count_params())
```

The batch size you choose is the *global* batch: each step, every replica
gets `global_batch_size / num_replicas` of its rows and the gradients are
averaged over the replicas, so the update is that of one device on the global
batch. Two details differ from one device:

* Random masking. Every replica draws its own masks, dropout and samples
  (`prepare` folds the replica index into every random stream of the model);
  identical data on two replicas is masked differently. Under JAX the step is
  one SPMD program over the global batch, whose random draws are those of a
  single device: same seed, same masks.
* Loss normalisation. With replicas (TF, torch), each replica normalises its
  loss by its own number of masked tokens / real tokens and the gradients are
  averaged, as in every data-parallel engine. This equals the single-device
  loss when the replicas hold equally many tokens (packed pre-training
  examples do); with ragged padding it weights tokens slightly differently.
  JAX computes the exact global loss.
* Gradient clipping. JAX and `ddp` clip the averaged gradient, like one
  device. Keras' TensorFlow optimizer clips each replica's share *before*
  summing the shares, so with `mirrored` an active `global_clipnorm` (1.0 in
  ELECTRA's AdamW) bounds every share instead of the total.
* Logs. Under `ddp` every rank logs the metrics of its own rows (their mean
  over ranks is the global value); TensorFlow and JAX log global values.
* TensorFlow only: a model that overrides `compute_loss` must return
  `scale_loss_for_replicas(loss)` (Keras does it for compiled losses).

Running each kind on a multi-device machine or a cluster:

* JAX, one machine, all GPUs/TPU cores (`"data_parallel"`, or
  `"model_parallel"` with `model_parallel_size=k` for models that do not fit
  one device): `KERAS_BACKEND=jax python recipes/pretrain.py --distribute
  data_parallel ...`. Several hosts: run the same command on every host with
  `KERAS_DISTRIBUTION_JOB_ADDRESSES=<host0>:1234` (the coordinator),
  `KERAS_DISTRIBUTION_NUM_PROCESSES=<hosts>`,
  `KERAS_DISTRIBUTION_PROCESS_ID=<0..hosts-1>` (on Cloud TPU pods the
  runtime provides them); `distribution_scope` then calls
  `keras.distribution.initialize()` and `shard` gives each host its rows.
* TensorFlow, one machine: `KERAS_BACKEND=tensorflow python
  recipes/pretrain.py --distribute mirrored ...` (all visible GPUs; choose
  them with `CUDA_VISIBLE_DEVICES`). Several machines: run the same command
  with `--distribute multi_worker_mirrored` on every worker, each with
  `TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
  "task": {"type": "worker", "index": <i>}}'`; feed a `tf.data.Dataset`
  batched with the global batch size (tf.data shards it across workers).
  Create the scope first thing in the program: the strategy must exist
  before TensorFlow runs any op.
* PyTorch, one machine with N GPUs: `KERAS_BACKEND=torch torchrun
  --standalone --nproc_per_node=N recipes/pretrain.py --distribute ddp ...`
  (nccl; on CPU, gloo). Several machines: `torchrun --nnodes=M
  --nproc_per_node=N --node_rank=<i> --rdzv_backend=c10d
  --rdzv_endpoint=<host0>:29500 --rdzv_id=electra recipes/pretrain.py
  --distribute ddp ...` on every machine.
"""

import contextlib
import os

import keras
import numpy as np

# kind -> backend that runs it.
KINDS = {
    "none": None,
    "data_parallel": "jax",
    "model_parallel": "jax",
    "mirrored": "tensorflow",
    "multi_worker_mirrored": "tensorflow",
    "ddp": "torch",
}
# The default axis names of the `model_parallel` device mesh.
BATCH_AXIS = "batch"
MODEL_AXIS = "model"


def supported_kinds(backend=None):
    """The `distribution_scope` kinds a backend supports."""
    backend = backend or keras.backend.backend()
    return ["none"] + [k for k, b in KINDS.items() if b == backend]


def _check_kind(kind, backend):
    if kind in KINDS and KINDS[kind] in (None, backend):
        return
    by_backend = "; ".join(
        f"{b}: {', '.join(repr(k) for k in supported_kinds(b))}"
        for b in ("jax", "tensorflow", "torch")
    )
    if kind in KINDS:
        problem = (
            f"Distribution kind {kind!r} runs on the {KINDS[kind]} backend, "
            f"but Keras runs on {backend}"
        )
    else:
        problem = f"Unknown distribution kind {kind!r}"
    raise ValueError(
        f"{problem}. Supported kinds per backend: {by_backend}. Select the "
        "backend with the KERAS_BACKEND environment variable."
    )


@contextlib.contextmanager
def distribution_scope(kind="none", *, devices=None, model_parallel_size=None):
    """Set up `kind`'s distributed engine; build, compile and fit inside.

    Args:
        kind: one of `"none"`; JAX: `"data_parallel"`, `"model_parallel"`;
            TensorFlow: `"mirrored"`, `"multi_worker_mirrored"`; PyTorch:
            `"ddp"`. A kind of another backend raises a `ValueError`.
        devices: optional device list for `"data_parallel"` /
            `"model_parallel"` (e.g. `keras.distribution.list_devices()`,
            the default) or `"mirrored"` (e.g. `["/gpu:0", "/gpu:1"]`; the
            default is every visible GPU, else the CPU).
        model_parallel_size: int, `"model_parallel"` only. Devices each
            model replica is sharded over (the `"model"` axis of the mesh);
            the others form the data-parallel `"batch"` axis. Defaults to
            all devices (one replica, sharded everywhere).

    Yields:
        A `Distributed` handle: `prepare(model)` after `compile()`,
        `shard(data, global_batch_size)`, `fit_batch_size(global_batch_size)`,
        `is_chief`, and the engine itself (`distribution` for JAX,
        `strategy` for TensorFlow).

    What each kind does:

    * `"data_parallel"`: `keras.distribution.DataParallel` over `devices`:
      variables replicated, every batch split along its first axis, one
      SPMD program per step (XLA inserts the gradient all-reduce). With
      `KERAS_DISTRIBUTION_NUM_PROCESSES` set (several hosts),
      `keras.distribution.initialize()` is called first.
    * `"model_parallel"`: `keras.distribution.ModelParallel` on a
      `(batch, model)` mesh with `electra_layout_map`: attention, FFN and
      token-embedding kernels sharded over `"model"`, data over `"batch"`.
    * `"mirrored"` / `"multi_worker_mirrored"`: the strategy's `scope()` is
      entered, so the model and its optimizer are created as mirrored
      variables; Keras' `fit` runs the step on every replica and sums the
      gradients. `multi_worker_mirrored` reads the cluster from `TF_CONFIG`.
    * `"ddp"`: joins the `torch.distributed` process group that `torchrun`
      describes (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, ... environment
      variables; nccl on GPU with one GPU per process, gloo on CPU) and leaves
      it on exit. `prepare(model)` broadcasts rank 0's weights and averages
      the gradients over the ranks (see `Distributed.prepare`).
    """
    backend = keras.backend.backend()
    _check_kind(kind, backend)
    if kind == "none":
        yield Distributed(kind)
    elif backend == "jax":
        distribution = _jax_distribution(kind, devices, model_parallel_size)
        with distribution.scope():
            yield Distributed(kind, distribution=distribution)
    elif backend == "tensorflow":
        strategy = _tf_strategy(kind, devices)
        with strategy.scope():
            yield Distributed(kind, strategy=strategy)
    else:
        created = _torch_init_process_group()
        try:
            yield Distributed(kind)
        finally:
            if created:
                import torch.distributed as dist

                dist.destroy_process_group()


class Distributed:
    """What `distribution_scope` yields: the engine and a few helpers."""

    def __init__(self, kind, distribution=None, strategy=None):
        self.kind = kind
        self.backend = keras.backend.backend()
        self.distribution = distribution
        self.strategy = strategy

    @property
    def num_replicas(self):
        """Data-parallel replicas in the whole job (the global batch splits)."""
        if self.distribution is not None:
            mesh = self.distribution.device_mesh
            axis = mesh.axis_names.index(self.distribution.batch_dim_name)
            return mesh.shape[axis]
        if self.strategy is not None:
            return self.strategy.num_replicas_in_sync
        return self.num_processes

    @property
    def num_processes(self):
        """Processes in the job (1 unless multi-host JAX / multi-worker TF /
        torchrun)."""
        if self.distribution is not None:
            return self.distribution.num_processes
        if self.kind == "multi_worker_mirrored":
            resolver = self.strategy.cluster_resolver
            workers = resolver.cluster_spec().as_dict().get("worker", [])
            return max(1, len(workers))
        if self.kind == "ddp":
            import torch.distributed as dist

            return dist.get_world_size()
        return 1

    @property
    def process_index(self):
        """This process's index in `[0, num_processes)`."""
        if self.distribution is not None:
            import jax

            return jax.process_index()
        if self.kind == "multi_worker_mirrored":
            return self.strategy.cluster_resolver.task_id or 0
        if self.kind == "ddp":
            import torch.distributed as dist

            return dist.get_rank()
        return 0

    @property
    def is_chief(self):
        """Whether this process should log, checkpoint and save presets."""
        return self.process_index == 0

    def fit_batch_size(self, global_batch_size):
        """The `batch_size` this process passes to `fit()`.

        TensorFlow splits the global batch itself (pass it whole). Under
        torchrun and multi-host JAX every process feeds its own rows:
        `global_batch_size / num_processes`.
        """
        if self.strategy is not None:
            return global_batch_size
        return self._local_batch_size(global_batch_size)

    def _local_batch_size(self, global_batch_size):
        processes = self.num_processes
        if global_batch_size % processes:
            raise ValueError(
                f"The global batch size {global_batch_size} must be divisible "
                f"by the number of processes ({processes})."
            )
        if self.num_replicas and global_batch_size % self.num_replicas:
            raise ValueError(
                f"The global batch size {global_batch_size} must be divisible "
                f"by the number of replicas ({self.num_replicas})."
            )
        return global_batch_size // processes

    def shard(self, data, global_batch_size):
        """This process's rows of in-memory `data` (a dict or array).

        Every global batch (consecutive `global_batch_size` rows) is cut into
        `num_processes` consecutive parts and process `i` keeps part `i`; a
        last partial global batch is dropped, so that every process runs the
        same number of steps (a process with one step more would wait for the
        others' gradients forever). Single-process kinds get `data` back
        (minus that partial batch). Pass `shuffle=False` to `fit()` (shuffle
        the examples beforehand, the same way on every process) to keep the
        global batches intact. For TensorFlow multi-worker, feed a
        `tf.data.Dataset` batched with the global batch instead.
        """
        if self.strategy is not None and self.num_processes > 1:
            raise ValueError(
                "Under multi_worker_mirrored feed a `tf.data.Dataset` batched "
                "with the global batch size; tf.data shards it across workers."
            )
        self._local_batch_size(global_batch_size)  # Checks divisibility.
        parts = 1 if self.strategy is not None else self.num_processes
        index = self.process_index

        def take(array):
            array = np.asarray(array)
            steps = len(array) // global_batch_size
            array = array[: steps * global_batch_size]
            if parts == 1:
                return array
            rows = array.shape[1:]
            array = array.reshape((steps, parts, -1) + rows)
            return array[:, index].reshape((-1,) + rows)

        return keras.tree.map_structure(take, data)

    def prepare(self, model):
        """Make a compiled model ready for distributed `fit()`; returns it.

        * Every random stream of the model (the pretrainer's masking and
          sampling, dropout) folds in the replica index, so replicas draw
          different masks. Under JAX (one SPMD program) nothing changes. The
          generator *state* stays identical on all replicas, so checkpoints
          do not depend on the replica.
        * TensorFlow: the model's `compute_loss` must return
          `scale_loss_for_replicas(loss)` (see there).
        * `"ddp"`: broadcasts rank 0's weights to all ranks and makes the
          optimizer all-reduce (average) the gradients over the ranks before
          it clips and applies them: one `torch.distributed.all_reduce` per
          bucket of gradients after `backward()`, inside Keras' own torch
          train step. Call `prepare` again after a new `compile()`.

        Call it before the first `fit()` / `evaluate()` / `predict()`: a step
        function already traced keeps the random streams it was traced with.
        """
        make_random_streams_per_replica(model)
        if self.kind == "ddp":
            if getattr(model, "optimizer", None) is None:
                raise ValueError(
                    "Call `prepare(model)` after `model.compile(...)`: the "
                    "gradient all-reduce is installed on the optimizer."
                )
            _torch_broadcast_variables(model.variables)
            _torch_average_gradients_in(model.optimizer)
        return model


# === JAX ===


def electra_layout_map(device_mesh, model_axis=MODEL_AXIS):
    """A `keras.distribution.LayoutMap` sharding ELECTRA over `model_axis`.

    Sharded along `model_axis` of `device_mesh` (the rest is replicated);
    the rules match both towers of `ElectraPretrainer` and any
    `ElectraBackbone` / keras-hub `ElectraBackbone`:

    * `token_embedding/embeddings` (vocab, embedding_dim): embedding_dim;
    * `.../self_attention_layer/{query,key,value}/kernel` (hidden, heads,
      head_dim) and their biases (heads, head_dim): head_dim;
    * `.../self_attention_layer/attention_output/kernel` (heads, head_dim,
      hidden): head_dim;
    * `.../feedforward_intermediate_dense/kernel` (hidden, intermediate) and
      its bias: intermediate;
    * `.../feedforward_output_dense/kernel` (intermediate, hidden):
      intermediate.

    Attention is split along `head_dim` (64 in every ELECTRA size) rather
    than along the heads because the ELECTRA-Small generator has a single
    head; the embedding table along `embedding_dim` because vocabularies
    (30522) rarely divide by the mesh. Every sharded dimension must be
    divisible by the `model_axis` size. The optimizer's slots inherit the
    layouts. XLA (GSPMD) inserts the collectives.
    """
    layout_map = keras.distribution.LayoutMap(device_mesh)
    m = model_axis
    attention = r"(.*/)?transformer_layer_\d+/self_attention_layer"
    ffn = r"(.*/)?transformer_layer_\d+/feedforward"
    layout_map[r"(.*/)?token_embedding/embeddings"] = (None, m)
    layout_map[attention + r"/(query|key|value)/kernel"] = (None, None, m)
    layout_map[attention + r"/(query|key|value)/bias"] = (None, m)
    layout_map[attention + r"/attention_output/kernel"] = (None, m, None)
    layout_map[ffn + r"_intermediate_dense/kernel"] = (None, m)
    layout_map[ffn + r"_intermediate_dense/bias"] = (m,)
    layout_map[ffn + r"_output_dense/kernel"] = (m, None)
    return layout_map


def _jax_distribution(kind, devices, model_parallel_size):
    if "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ:
        import jax

        if not jax.distributed.is_initialized():
            keras.distribution.initialize()
    devices = devices or keras.distribution.list_devices()
    if kind == "data_parallel":
        if model_parallel_size not in (None, 1):
            raise ValueError(
                "`model_parallel_size` is for kind='model_parallel'."
            )
        return keras.distribution.DataParallel(devices=devices)
    model_parallel_size = model_parallel_size or len(devices)
    if len(devices) % model_parallel_size:
        raise ValueError(
            f"`model_parallel_size={model_parallel_size}` must divide the "
            f"number of devices ({len(devices)})."
        )
    mesh = keras.distribution.DeviceMesh(
        shape=(len(devices) // model_parallel_size, model_parallel_size),
        axis_names=(BATCH_AXIS, MODEL_AXIS),
        devices=devices,
    )
    return keras.distribution.ModelParallel(
        layout_map=electra_layout_map(mesh), batch_dim_name=BATCH_AXIS
    )


# === TensorFlow ===


def _tf_strategy(kind, devices):
    import tensorflow as tf

    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if devices is not None:
        raise ValueError(
            "`devices` is for 'mirrored'; multi_worker_mirrored uses every "
            "GPU of each worker (set CUDA_VISIBLE_DEVICES)."
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


# === PyTorch ===


def _torch_init_process_group():
    """Join torchrun's process group; True if this call created it."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError(
            "kind='ddp' runs one process per device under torchrun: "
            "`torchrun --nproc_per_node=N script.py ...` (RANK and WORLD_SIZE "
            "are not set)."
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def _torch_broadcast_variables(variables):
    import torch
    import torch.distributed as dist

    if dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for variable in variables:
            dist.broadcast(variable.value.data, src=0)


# Gradients per all-reduce call (elements), as torch DDP's 25 MB buckets.
_BUCKET_SIZE = 25 * 2**20 // 4


def average_gradients(grads, variables=None):
    """Average `grads` (a list of torch tensors / None) over all ranks.

    The gradients are flattened into buckets per dtype and all-reduced (one
    collective per bucket, in a fixed order on every rank). A gradient that
    is `None` on every rank stays `None`; `None` on some ranks only counts as
    zeros there.
    """
    import torch
    import torch.distributed as dist

    world_size = dist.get_world_size()
    if world_size == 1:
        return list(grads)
    grads = list(grads)
    if variables is None and any(g is None for g in grads):
        raise ValueError("`variables` is needed when a gradient is None.")
    dense = [
        torch.zeros_like(variables[i].value) if grad is None else grad
        for i, grad in enumerate(grads)
    ]
    device = dense[0].device
    present = torch.tensor(
        [g is not None for g in grads], dtype=torch.float32, device=device
    )
    dist.all_reduce(present)
    averaged = [None] * len(grads)
    buckets = {}

    def flush(dtype):
        indices = buckets.pop(dtype)
        flat = torch.cat([dense[i].reshape(-1) for i in indices])
        dist.all_reduce(flat)
        flat /= world_size
        offset = 0
        for i in indices:
            size = dense[i].numel()
            averaged[i] = flat[offset : offset + size].view_as(dense[i])
            offset += size

    sizes = {}
    for i, grad in enumerate(dense):
        buckets.setdefault(grad.dtype, []).append(i)
        sizes[grad.dtype] = sizes.get(grad.dtype, 0) + grad.numel()
        if sizes[grad.dtype] >= _BUCKET_SIZE:
            flush(grad.dtype)
            sizes[grad.dtype] = 0
    for dtype in list(buckets):
        flush(dtype)
    return [g if p > 0 else None for g, p in zip(averaged, present.tolist())]


def _torch_average_gradients_in(optimizer):
    """Make `optimizer.apply` average the gradients over the ranks first."""
    if getattr(optimizer, "_electra_averages_gradients", False):
        return
    apply = optimizer.apply

    def apply_averaged(grads, trainable_variables=None):
        variables = (
            list(trainable_variables)
            if trainable_variables is not None
            else optimizer._trainable_variables
        )
        return apply(average_gradients(grads, variables), variables)

    optimizer.apply = apply_averaged
    optimizer._electra_averages_gradients = True


# === Loss scaling for TensorFlow strategies ===


def scale_loss_for_replicas(loss):
    """`loss / replicas in sync` under a TensorFlow strategy, else `loss`.

    Keras' TensorFlow train step *sums* the replicas' gradients and divides
    compiled losses by the number of replicas so that the sum is the mean. A
    model whose `compute_loss` returns its own per-replica mean loss (as
    `ElectraPretrainer` does) must do the same, or every replica adds a full
    gradient (N times the single-device update) and the logged `loss` is N
    times too large. Under JAX, torch and the default strategy this returns
    `loss` unchanged.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return loss
    return loss / replicas


# === Per-replica random streams ===


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A `SeedGenerator` whose seeds differ per data-parallel replica.

    The state (and so checkpoints) is the same on every replica; each drawn
    seed gets `replica_index * 2**32 / num_replicas` added to its first
    element, so the replicas' streams never overlap for 2**32 / num_replicas
    draws (torch combines the two seed words into one 32-bit seed). The
    replica is the TensorFlow replica in sync group (inside
    `strategy.run`) or the torch.distributed rank; under JAX the step is one
    program over the global batch and seeds are left as they are.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        index, count = _replica_index_and_count()
        if count == 1:
            return seed
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            offset = tf.cast(index, "int64") * (2**32 // count)
            return seed + tf.cast(tf.stack([offset, 0]), seed.dtype)
        # torch: int32 words, reinterpreted as uint32 by Keras.
        import torch

        offset = (2**32 // count) * index
        shifted = seed.to(torch.int64) + torch.tensor(
            [offset, 0], dtype=torch.int64, device=seed.device
        )
        shifted = (shifted + 2**31) % 2**32 - 2**31
        return shifted.to(seed.dtype)


def _replica_index_and_count():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return 0, 1
        return context.replica_id_in_sync_group, context.num_replicas_in_sync
    if backend == "torch":
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    return 0, 1


def make_random_streams_per_replica(model):
    """Turn every `SeedGenerator` of `model` into a `ReplicaSeedGenerator`.

    Keeps each generator's state variable (its value, path and checkpoint
    entry); only the seeds it hands out change, and only with several
    replicas.
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", []):
            if type(generator) is keras.random.SeedGenerator:
                generator.__class__ = ReplicaSeedGenerator
    return model
