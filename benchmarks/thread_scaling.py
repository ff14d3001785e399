"""How well each backend spreads the encoder's work over the CPU cores.

Times the pieces of one ELECTRA encoder layer (`electra_small` sizes by
default) on 1 core and on `--cores` cores, per Keras backend, and prints the
speed-up. A backend that runs a piece on one thread shows a speed-up near 1;
one that splits it well, near the number of cores. The pieces:

- `scores`: the batched attention product `q k^T` alone
  (`keras.ops.einsum("bnth,bnsh->bnts")`, heads-major inputs);
- `dense`: a `(tokens, hidden) x (hidden, intermediate)` product alone
  (`keras.ops.matmul`), the shape of the feed-forward network's;
- `layer forward`: one `TransformerEncoder` layer, `predict_on_batch`;
- `layer train`: the same layer's compiled training step (SGD on a mean
  squared error, dropout on), `train_on_batch`.

Each (backend, cores) pair runs in its own process, pinned to its first
cores before any backend is imported (`os.sched_setaffinity`; PyTorch is
also told its thread count). Times are medians of `--repeats` calls after
`--warmup` untimed ones.

    python benchmarks/thread_scaling.py --backends jax,torch,tensorflow

It prints a table and writes JSON to `--output`.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PIECES = ("scores", "dense", "layer forward", "layer train")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backends",
        default="jax,torch,tensorflow",
        help="Comma-separated Keras backends, each in its own processes.",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="Cores of the multi-core run (the single-core run is the "
        "baseline).",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--output",
        default=os.path.join(HERE, "results", "thread_scaling.json"),
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return parser


def validate(args):
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - {"jax", "torch", "tensorflow"})
    if unknown or not backends:
        raise ValueError(
            f"--backends must name jax, torch or tensorflow; got "
            f"{args.backends!r}."
        )
    available = len(os.sched_getaffinity(0))
    if not 1 <= args.cores <= available:
        raise ValueError(
            f"--cores must be between 1 and the {available} cores this "
            f"process may use; got {args.cores}."
        )
    if args.hidden_dim % args.num_heads:
        raise ValueError(
            f"--hidden-dim ({args.hidden_dim}) must be a multiple of "
            f"--num-heads ({args.num_heads})."
        )
    for name in ("batch_size", "sequence_length", "intermediate_dim",
                 "warmup", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1.")
    return backends


def piece_flops(args):
    """Model FLOPs of each piece (a multiply-add counts 2)."""
    tokens = args.batch_size * args.sequence_length
    hidden, inner = args.hidden_dim, args.intermediate_dim
    scores = 2 * args.batch_size * args.sequence_length**2 * hidden
    forward = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    forward += 2 * scores  # scores and the weighted sum of the values
    return {
        "scores": scores,
        "dense": 2 * tokens * hidden * inner,
        "layer forward": forward,
        "layer train": 3 * forward,
    }


def median_ms(call, warmup, repeats):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def run_worker(args):
    """Times the pieces in this process, on its first `args.worker` cores;
    prints one JSON line."""
    cores = args.worker
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import (
        TransformerEncoder,
    )

    backend = keras.config.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(cores)

    def synced(fn):
        # TensorFlow and PyTorch run eager CPU ops synchronously; JAX
        # dispatches them asynchronously.
        if backend == "jax":
            return lambda: fn().block_until_ready()
        return fn

    rng = np.random.default_rng(0)
    batch, length = args.batch_size, args.sequence_length
    heads, hidden = args.num_heads, args.hidden_dim

    def normal(*shape):
        return keras.ops.convert_to_tensor(
            rng.standard_normal(shape).astype("float32")
        )

    q = normal(batch, heads, length, hidden // heads)
    k = normal(batch, heads, length, hidden // heads)
    x = normal(batch * length, hidden)
    w = normal(hidden, args.intermediate_dim)
    inputs = keras.Input((length, hidden))
    model = keras.Model(
        inputs,
        TransformerEncoder(
            intermediate_dim=args.intermediate_dim,
            num_heads=heads,
            dropout=0.1,
            activation="gelu",
        )(inputs),
    )
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    layer_x = rng.standard_normal((batch, length, hidden)).astype("float32")
    calls = {
        "scores": synced(lambda: keras.ops.einsum("bnth,bnsh->bnts", q, k)),
        "dense": synced(lambda: keras.ops.matmul(x, w)),
        "layer forward": lambda: model.predict_on_batch(layer_x),
        "layer train": lambda: model.train_on_batch(layer_x, layer_x),
    }
    times = {
        name: median_ms(call, args.warmup, args.repeats)
        for name, call in calls.items()
    }
    print(json.dumps({"backend": backend, "cores": cores, "ms": times}))


def worker_times(args, backend, cores):
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               str(cores)]
    for name in ("batch_size", "sequence_length", "hidden_dim", "num_heads",
                 "intermediate_dim", "warmup", "repeats"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode or not lines:
        raise RuntimeError(
            f"The {backend} worker on {cores} core(s) failed:\n"
            f"{result.stderr[-2000:]}"
        )
    return json.loads(lines[-1])["ms"]


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        return run_worker(args)
    backends = validate(args)
    flops = piece_flops(args)
    rows = []
    for backend in backends:
        print(f"  {backend} ...", file=sys.stderr, flush=True)
        one = worker_times(args, backend, 1)
        many = worker_times(args, backend, args.cores)
        for piece in PIECES:
            rows.append({
                "backend": backend,
                "piece": piece,
                "ms_1_core": one[piece],
                f"ms_{args.cores}_cores": many[piece],
                "speedup": one[piece] / many[piece],
                "gflops": flops[piece] / many[piece] / 1e6,
            })
    print(table(rows, args.cores))
    from keras_electra.utils.file_io import write_json

    write_json(args.output, {
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": args.cores},
        "sizes": {name: getattr(args, name) for name in (
            "batch_size", "sequence_length", "hidden_dim", "num_heads",
            "intermediate_dim")},
        "rows": rows,
    })
    print(f"Wrote {args.output}")
    return rows


def table(rows, cores):
    lines = [
        f"| backend | piece | 1 core ms | {cores} cores ms | speed-up "
        f"| GFLOP/s ({cores} cores) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['piece']} | {row['ms_1_core']:,.1f} "
            f"| {row[f'ms_{cores}_cores']:,.1f} | {row['speedup']:.2f} "
            f"| {row['gflops']:,.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
