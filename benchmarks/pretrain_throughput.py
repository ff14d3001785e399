"""keras_electra vs Hugging Face transformers: pre-training step throughput.

Measures tokens per second of the *whole* ELECTRA pre-training step
(masking, generator, sampling, discriminator, backward pass, optimizer
update) for `ElectraPretrainer` on one or more Keras backends, in float32
and `mixed_bfloat16`, compiled as `compile()` does by default
(`--jit-compile auto`: XLA on JAX, TensorFlow's graph without XLA on a CPU,
eager PyTorch; the fastest of each on these CPUs); and, in the same run,
the same step written with Hugging Face `transformers` in eager PyTorch:

- `ElectraForMaskedLM` (the generator config) and `ElectraForPreTraining`
  sharing the embedding modules (the generator's output layer tied to the
  word embeddings), as in the paper;
- the original masking (15% of the tokens, at most
  `int((0.15 + 0.005) * sequence_length)` per sequence, never special
  tokens; 85% shown as `[MASK]`, the rest left as they are) and
  inverse-transform sampling from the generator's softmax at the masked
  positions (`keras_electra.pretraining.objectives.softmax_sample`);
- loss = MLM loss + 50 * discriminator loss; `torch.optim.AdamW` (learning
  rate 5e-4, weight decay 0.01 off LayerNorm and biases, epsilon 1e-6) with
  gradient clipping at norm 1.0, like `electra_adamw`;
- in float32 and with CPU bfloat16 autocast (forward and losses under
  `torch.autocast("cpu", torch.bfloat16)`, float32 weights).

Both sides compute the same function: the Keras models are built with
`approximate_gelu=False`, the exact GELU of `ElectraConfig`'s default
`hidden_act="gelu"` (the presets' default is the original's tanh
approximation, which PyTorch's CPU kernel computes 2.8x slower).

Both sides get the same batches (random ids, `[CLS] ... [SEP]`, no padding)
and the same thread count (`--threads`: `torch.set_num_threads`, TensorFlow's
intra-op threads, `OMP_NUM_THREADS`; XLA on JAX sizes its pool to the cores
it may use, so with fewer threads than cores every worker is pinned to that
many cores). On a busy machine PyTorch with several threads suffers most:
the script warns when other jobs ran alongside, by the CPU time that
processes other than its own took during the run (`/proc/stat`; the JSON's
`outside_cores_busy`; elsewhere by the load average at the start).

How it is measured. Every variant runs in its own subprocess (so that its
peak resident memory, `ru_maxrss`, is its own; the tables also give the
RSS after the imports and the peak above it, what the model and its steps
added: keras-hub imports TensorFlow on every backend wherever it is
installed, Keras JAX and matplotlib; `--minimal-install` runs the Keras
workers on JAX and PyTorch without those, which work on token ids does not
need). The workers are started first; each builds its model, compiles and
runs `--warmup-steps` untimed steps, then waits. Then, round after round,
each worker in turn runs `--chunk-steps` timed steps while the others
sleep: the variants alternate, so a change in machine load hits them all
alike. The step time is the median over the rounds; the device is
synchronised at both ends of a chunk (a Python float of the loss). The
Keras side runs `fit()` unchanged: a callback pauses it between chunks. After a phase's last chunk every worker
holds until it is released, and the workers are released one at a time:
a worker's untimed work between phases (`predict`'s first step, the end of
`fit()`, its exit) never overlaps another worker's timed chunk. Each report
carries the span the worker was busy for (the JSON's `busy_spans`). A full
run with several backends times one backend at a time (pre-training,
then fine-tuning), each next to its own transformers baseline, so that the
ratios are always from the same rounds and the workers held at once fit
in memory.

Every worker, Keras and transformers alike, starts with glibc's malloc told
to keep the memory it frees (`--allocator retain`, the default; see
`ALLOCATORS`): under glibc's defaults each step's large buffers come from
the kernel afresh and fault in page by page, which cost Hugging Face's
pre-training step about a quarter of its time and JAX's up to 15%.
`--allocator glibc` runs glibc's defaults. (The library's
`keep_freed_memory()` does the same from inside a process, and the recipes
call it; the environment reaches the transformers worker too, which does
not import the library.)

Also measured, before and after the timed rounds: the machine's
matrix-multiply peak (float32 and bfloat16; large `torch.matmul`, and
`jnp.dot` when JAX is benchmarked; the best of all is the peak), and from it
the model-FLOPs utilisation (MFU) of each variant. Model FLOPs are counted
analytically (`keras_electra.pretraining.flops`), the same for every variant:
`6 * matmul parameters * tokens`
for the generator and the discriminator (embedding projection, attention and
feed-forward projections, the discriminator's head), plus attention scores
and values (`12 * sequence_length * hidden` per token and layer), plus the
generator's MLM head (dense and vocabulary logits) only at the masked
positions. A variant that computes more (Hugging Face's `ElectraForMaskedLM`
computes vocabulary logits at every position) gets no credit for it.

Fine-tuning and inference (`--tasks`): the same comparison for each task
model against its transformers counterpart, `ElectraTextClassifier` vs
`ElectraForSequenceClassification` (2 classes), `ElectraTokenClassifier` vs
`ElectraForTokenClassification` (9 classes, as CoNLL-2003's NER tags) and
`ElectraQuestionAnswerer` vs `ElectraForQuestionAnswering`: a training step
(the task's `compile()` defaults: AdamW 1e-4 with weight decay off
LayerNorm and biases, cross-entropy, and accuracy for the classifiers;
`hf_adamw` on the transformers side) and `predict` / an `inference_mode`
forward pass.
`predict` is timed in steady state like `fit()`, by a callback between its
steps: one call over all the timed batches, its first batch untimed (the
call's set-up, up to a second on 2 cores with TensorFlow's `tf.data`
threads, is left out as Hugging Face's loop has none).

    KERAS_BACKEND=jax python benchmarks/pretrain_throughput.py
    python benchmarks/pretrain_throughput.py --backends tensorflow,jax,torch
    python benchmarks/pretrain_throughput.py --quick   # smoke run

`--quick` takes 1-2 minutes on an idle 2-core machine. `--jit-compile true`
compiles everything (XLA on TensorFlow too, `torch.compile`): slower on
these CPUs, and `torch.compile` needs 3 warmup steps of about a minute
each.

Writes JSON to `benchmarks/results/pretrain_throughput_<backends>.json`
(`..._quick.json` with `--quick`) and prints markdown tables.

GPU mode. `--gpu-table` picks the GPU table's variants and schedule, and
`--device` (cpu or cuda) where they run; `--device cuda` implies
`--gpu-table` and stops with a message where PyTorch sees no CUDA GPU:

    python benchmarks/pretrain_throughput.py --gpu-table --device cuda \
        --preset electra_base
    bash benchmarks/gpu_throughput.sh --prepare  # here: wheels into .whl/
    bash benchmarks/gpu_throughput.sh            # there: both presets

The table is the pre-training step only, in `mixed_bfloat16` (CUDA
bfloat16 autocast on the transformers side), on JAX (`jit_compile=True`:
XLA) and PyTorch, against two transformers baselines: eager
(`hf-torch-eager`) and with the generator and discriminator each wrapped
in `torch.compile` (`hf-torch-compile`; at least 3 warmup steps, so that
compiling is over before the timed rounds, which the JSON checks:
`graphs_compiled_while_timed`). The Keras torch backend runs eager by
default (`--torch-jit-compile auto`): `torch.compile` of the whole Keras
step recompiles over its first steps and takes minutes (see `--quick`
above), too fragile for a run that has to fit a few minutes of GPU time.
Defaults: batch 128 of 128 tokens, 5 warmup steps, 3 rounds of 10 steps,
`electra_small` (`gpu_throughput.sh` runs `electra_small`, then
`electra_base`, each under a time limit). The transformers side gets its
batches on the GPU before timing; Keras copies each batch from NumPy, as
`fit()` does.

On a GPU the workers run one at a time (start, warm up, timed rounds,
exit, then the next): JAX and PyTorch each keep what they allocate in their
own cache, so the variants would not fit side by side, and a dedicated GPU
has no other jobs for the alternation to even out. JAX gets
`XLA_PYTHON_CLIENT_PREALLOCATE=false` (it would otherwise take most of the
GPU at start-up). The matmul peak is PyTorch's, size 8192, measured once
before the variants; MFU is against this measured bfloat16 peak, as on
the CPU, not against the GPU's nominal figure, which no matmul reaches.
Each row also has the peak GPU memory that the variant's allocator
handed out (`torch.cuda.max_memory_allocated()`, or JAX's
`peak_bytes_in_use`; none on the CPU) next to the host's peak RSS. A
variant that fails is listed as such and the others still run.
`--gpu-table --device cpu` runs the same code on the CPU (the test suite
does, with a tiny model).
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BACKENDS = ("tensorflow", "jax", "torch")
# --minimal-install: what the library does not need for work on token ids
# and keras-hub (TensorFlow) or Keras (JAX, matplotlib) import wherever it is
# installed. keras-hub's requirements bring TensorFlow (through
# tensorflow-text) on Linux and macOS: a process goes without it only where
# it was removed, or on Windows.
MINIMAL_INSTALL_ABSENT = {
    "jax": ("tensorflow", "tensorflow_text", "torch", "matplotlib"),
    "torch": ("tensorflow", "tensorflow_text", "jax", "jaxlib", "matplotlib"),
}
# --tasks: the Keras task model, its transformers counterpart and the classes
# of its output layer (None: the question answerer's start and end logits).
TASKS = {
    "classifier": (
        "ElectraTextClassifier", "ElectraForSequenceClassification", 2
    ),
    "token_classifier": (
        "ElectraTokenClassifier", "ElectraForTokenClassification", 9
    ),
    "question_answerer": (
        "ElectraQuestionAnswerer", "ElectraForQuestionAnswering", None
    ),
}
PRECISIONS = ("fp32", "bf16")
KERAS_POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16"}
# BERT-uncased special ids, as `ElectraPretrainer` defaults.
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
MASK_RATE, MASK_TOKEN_RATE, DISCRIMINATOR_WEIGHT = 0.15, 0.85, 50.0
# Untimed steps at least, for torch.compile (the Keras torch backend's and
# the hf-torch-compile variant's).
TORCH_COMPILE_WARMUP = 3
QUICK = {
    "preset": "electra_tiny",
    "batch_size": 8,
    "warmup_steps": 1,
    "chunk_steps": 2,
    "rounds": 1,
    "finetune_precisions": "fp32",
    "matmul_size": 1024,
    "setup_parallel": 4,
}
FULL = {
    "preset": "electra_small",
    "batch_size": 32,
    "warmup_steps": 3,
    "chunk_steps": 5,
    "rounds": 3,
    "finetune_precisions": "fp32,bf16",
    "matmul_size": 4096,
    "setup_parallel": 2,
}
# --gpu-table, where it differs from FULL: sized to time electra_small and
# electra_base, compiling included, in under 8 minutes on one H100
# (benchmarks/gpu_throughput.sh).
GPU = {
    "batch_size": 128,
    "warmup_steps": 5,
    "chunk_steps": 10,
    "rounds": 3,
    "matmul_size": 8192,
}


# === Configuration =========================================================

# glibc's malloc, told to keep what is freed: one heap for every thread
# (MALLOC_ARENA_MAX), never a block mapped on its own (MALLOC_MMAP_MAX_),
# never memory handed back to the kernel (MALLOC_TRIM_THRESHOLD_, 16 GiB). By
# default a large block comes from the kernel afresh each time, and its
# pages fault in, zeroed, when first written: XLA's temporary buffer of
# the `electra_small` pre-training step (2 GB, from a worker thread's
# arena, which glibc maps on its own whatever its thresholds) cost 537,000
# page faults a step. Both sides of every comparison get the same settings.
ALLOCATORS = {
    "retain": {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30),
    },
    "glibc": {},
}
ALLOCATOR_VARIABLES = tuple(ALLOCATORS["retain"])


def default_backend():
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = os.path.join(
        os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
        "keras.json",
    )
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults in brackets are for a full run; --quick changes "
        f"them to {QUICK}; --gpu-table to {GPU}.",
    )
    add = parser.add_argument
    add(
        "--backends",
        default=None,
        help="Comma-separated Keras backends to benchmark, each in its own "
        "subprocesses [the KERAS_BACKEND environment variable, else "
        "Keras' configured backend; jax,torch with --gpu-table].",
    )
    add(
        "--precisions",
        default=None,
        help="[fp32,bf16; bf16 with --gpu-table]",
    )
    add("--preset", default=None, help="[electra_small]")
    add("--vocab-size", type=int, default=30522, help="[30522]")
    add("--sequence-length", type=int, default=128, help="[128]")
    add("--batch-size", type=int, default=None, help="[32]")
    add("--warmup-steps", type=int, default=None, help="[3]")
    add(
        "--chunk-steps",
        type=int,
        default=None,
        help="Timed steps per chunk (one chunk per variant per round) [5].",
    )
    add("--rounds", type=int, default=None, help="[3]")
    add(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="Threads for every variant [the cores available].",
    )
    add(
        "--jit-compile",
        choices=("true", "false", "auto"),
        default="auto",
        help="compile(jit_compile=...) on the Keras side [auto: Keras' "
        "default]; true: XLA on TensorFlow, jax.jit, torch.compile.",
    )
    add(
        "--torch-jit-compile",
        choices=("true", "false", "auto"),
        default=None,
        help="jit_compile of the Keras torch backend alone [--jit-compile; "
        "auto (eager) with --gpu-table].",
    )
    add(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="Where every variant runs [cpu]; cuda implies --gpu-table.",
    )
    add(
        "--gpu-table",
        action="store_true",
        help="The GPU table: pre-training only, one worker at a time, "
        "transformers eager and torch.compile baselines, peak GPU memory "
        "(see the module docstring). Runs on --device.",
    )
    add(
        "--time-limit",
        type=float,
        default=None,
        help="With --gpu-table: seconds for all the variants; the one "
        "running then is stopped, the rest are not run, and the table has "
        "the others [none].",
    )
    add(
        "--hf-compile-backend",
        default="inductor",
        help="torch.compile backend of the hf-torch-compile variant "
        "[inductor]; the test suite's aot_eager generates no code, to "
        "finish sooner on a CPU.",
    )
    add(
        "--allocator",
        choices=tuple(ALLOCATORS),
        default="retain",
        help="glibc malloc settings of every worker, Keras and transformers "
        "alike: retain (keep freed memory in the process, no page faults "
        "for reused buffers; see ALLOCATORS) or glibc (its defaults; any "
        "MALLOC_* setting of this shell is dropped) [retain].",
    )
    add(
        "--minimal-install",
        action="store_true",
        help="Run the Keras workers with no more installed than work on "
        "token ids needs: importing MINIMAL_INSTALL_ABSENT fails in them, as "
        "where it is not installed, so neither keras-hub imports TensorFlow "
        "nor Keras the other backends and matplotlib, as they do wherever "
        "those are installed. JAX and PyTorch only.",
    )
    add("--no-hf", action="store_true", help="Skip the transformers side.")
    add(
        "--skip-finetune",
        action="store_true",
        help="Skip the fine-tuning/inference comparisons.",
    )
    add(
        "--tasks",
        default=",".join(TASKS),
        help="Comma-separated task models of the fine-tuning/inference "
        f"comparisons, one table each [{','.join(TASKS)}].",
    )
    add(
        "--skip-pretrain",
        action="store_true",
        help="Skip the pre-training comparison.",
    )
    add(
        "--finetune-precisions",
        default=None,
        help="Precisions of the fine-tuning comparisons [fp32,bf16].",
    )
    add(
        "--matmul-size",
        type=int,
        default=None,
        help="Square matrix size for the matmul peak [4096].",
    )
    add(
        "--setup-parallel",
        type=int,
        default=None,
        help="Workers that may import/compile at the same time (nothing is "
        "timed then; each worker's peak memory stays its own) [2].",
    )
    add("--quick", action="store_true", help=f"Smoke run: {QUICK}.")
    add("--seed", type=int, default=0)
    add("--output", default=None, help="JSON output path.")
    add("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    args.gpu_table = args.gpu_table or args.device == "cuda"
    sizes = QUICK if args.quick else {**FULL, **GPU} if args.gpu_table else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.gpu_table:
        # No fine-tuning in the GPU table; no TensorFlow on the GPU machine.
        args.skip_finetune = True
        args.backends = args.backends or "jax,torch"
        args.precisions = args.precisions or "bf16"
        args.torch_jit_compile = args.torch_jit_compile or "auto"
    args.backends = (args.backends or default_backend()).split(",")
    args.precisions = (args.precisions or "fp32,bf16").split(",")
    args.torch_jit_compile = args.torch_jit_compile or args.jit_compile
    args.finetune_precisions = args.finetune_precisions.split(",")
    args.tasks = args.tasks.split(",")
    for task in args.tasks:
        if task not in TASKS:
            parser.error(f"--tasks: {task!r} is not one of {tuple(TASKS)}.")
    for backend in args.backends:
        if backend not in BACKENDS:
            parser.error(f"--backends: {backend!r} is not one of {BACKENDS}.")
    if args.minimal_install and "tensorflow" in args.backends:
        parser.error(
            "--minimal-install: the tensorflow backend is TensorFlow; "
            "benchmark jax and torch alone."
        )
    for precision in args.precisions + args.finetune_precisions:
        if precision not in PRECISIONS:
            parser.error(f"precision {precision!r} is not one of {PRECISIONS}.")
    for name in ("batch_size", "chunk_steps", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.warmup_steps < 1:
        parser.error("--warmup-steps must be at least 1 (compilation).")
    if args.output is None:
        suffix = "_quick" if args.quick else ""
        if args.gpu_table:
            table = "gpu" if args.device == "cuda" else "gpu-table-cpu"
            name = f"{table}_{args.preset}"
        else:
            name = "-".join(args.backends)
        args.output = os.path.join(
            HERE, "results", f"pretrain_throughput_{name}{suffix}.json"
        )
    return args


def load_library_module(relative_path):
    """A module of keras_electra that imports nothing of Keras, loaded from
    its file without importing the package (which imports Keras): the
    orchestrating process stays free of TensorFlow, JAX and PyTorch, and
    each worker picks its own backend."""
    path = os.path.join(ROOT, "keras_electra", relative_path)
    name = "keras_electra_" + relative_path[: -len(".py")].replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flops = load_library_module("pretraining/flops.py")
write_json = load_library_module("utils/file_io.py").write_json


def preset_configs(preset, vocab_size):
    """(discriminator, generator) encoder configs of a built-in preset.

    Read from `keras_electra/models/electra_presets.py` (plain data); the
    Keras workers check that their models have these sizes.
    """
    presets = load_library_module("models/electra_presets.py").PRESETS
    if preset not in presets:
        raise SystemExit(f"--preset must be one of {sorted(presets)}.")
    discriminator = dict(presets[preset]["backbone"], vocab_size=vocab_size)
    generator_size = presets[preset]["pretrainer"]["generator_size"]
    # `ElectraBackbone.generator_config`: hidden * size, one head per 64
    # units, feed-forward 4x hidden.
    hidden = max(1, round(discriminator["hidden_dim"] * generator_size))
    generator = dict(
        discriminator,
        hidden_dim=hidden,
        num_heads=max(1, hidden // 64),
        intermediate_dim=4 * hidden,
    )
    return discriminator, generator


def allocator_environment(allocator, environ):
    """A copy of `environ` with the glibc malloc settings of `allocator` (a
    key of `ALLOCATORS`) and no other value of the variables it may set."""
    env = {
        name: value
        for name, value in environ.items()
        if name not in ALLOCATOR_VARIABLES
    }
    env.update(ALLOCATORS[allocator])
    return env


def allocator_description(allocator):
    settings = " ".join(
        f"{name}={value}" for name, value in ALLOCATORS[allocator].items()
    )
    return f"{allocator} ({settings})" if settings else "glibc's defaults"


# === Orchestration =========================================================


class Worker:
    """A variant in its own process; talks JSON lines over a pipe."""

    def __init__(self, spec, env, log_dir):
        self.spec = spec
        self.name = spec["name"]
        read_fd, write_fd = os.pipe()
        self.log_path = os.path.join(
            log_dir, self.name.replace("/", "_") + ".log"
        )
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker",
             json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**env, "BENCH_RESULT_FD": str(write_fd)},
            pass_fds=(write_fd,),
            cwd=ROOT,
            text=True,
        )
        os.close(write_fd)
        self.started_at = time.time()
        self.results = os.fdopen(read_fd, "r")
        self.ready = None
        self.chunks = {}
        self.done = None
        # [start, end] (seconds since the epoch) of the worker's work after
        # its set-up: timed chunks and the untimed work between phases.
        self.busy_spans = []

    def receive(self):
        line = self.results.readline()
        if not line:
            self.process.wait()
            with open(self.log_path) as f:
                tail = f.read()[-4000:]
            raise RuntimeError(
                f"Worker {self.name} exited ({self.process.returncode}) "
                f"without reporting. Its output:\n{tail}"
            )
        message = json.loads(line)
        busy = message.pop("busy")
        if message["phase"] != "ready":
            self.busy_spans.append(busy)
        return message

    def _resume(self):
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.receive()

    def go(self):
        """Run one timed chunk; returns its report."""
        message = self._resume()
        self.chunks.setdefault(message["phase"], []).append(message)
        return message

    def release(self):
        """Let the worker past the end of a phase: on to the next phase's
        untimed first step, or to its exit, which this waits for."""
        message = self._resume()
        if message["phase"] == "done":
            self.done = message
            self.process.wait()
            self.finished_at = time.time()
            self.log.close()
        return message


def start_workers(specs, env, log_dir, parallel):
    """Start every worker; at most `parallel` set up (untimed) at once."""
    workers, setting_up = [], []
    for spec in specs:
        while len(setting_up) >= parallel:
            wait_ready(setting_up.pop(0))
        worker = Worker(spec, env, log_dir)
        print(f"  starting {worker.name}", file=sys.stderr, flush=True)
        workers.append(worker)
        setting_up.append(worker)
    for worker in setting_up:
        wait_ready(worker)
    return workers


def wait_ready(worker):
    worker.ready = worker.receive()
    print(
        f"  {worker.name} ready after {worker.ready['setup_seconds']:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def run_rounds(workers, phases, rounds):
    """Alternate the workers' timed chunks, phase by phase, round by round."""
    for phase in phases:
        members = [w for w in workers if phase in w.spec["phases"]]
        for round_index in range(rounds):
            for worker in members:
                # Let the previous worker's OpenMP threads stop spinning.
                time.sleep(0.3)
                message = worker.go()
                print(
                    f"  round {round_index + 1}/{rounds} {phase:8s} "
                    f"{worker.name:28s} "
                    f"{1000 * message['seconds'] / message['steps']:9.1f} "
                    "ms/step",
                    file=sys.stderr,
                    flush=True,
                )
        # One at a time, so that no worker's untimed work overlaps another's
        # chunk: the next phase's chunks start when all are done with it.
        for worker in members:
            worker.release()


def step_seconds(worker, phase):
    """Median over the chunks of the seconds per step."""
    chunks = worker.chunks.get(phase, [])
    return statistics.median(c["seconds"] / c["steps"] for c in chunks)


def measure_peaks(args, env, log_dir, when):
    specs = [{"name": "matmul-peak/torch", "kind": "peak", "library": "torch"}]
    # On a GPU, PyTorch's cuBLAS matmul alone: it is what both the Keras
    # torch backend and transformers run on.
    if "jax" in args.backends and not args.gpu_table:
        specs.append(
            {"name": "matmul-peak/jax", "kind": "peak", "library": "jax"}
        )
    results = []
    for spec in specs:
        spec.update(
            size=args.matmul_size,
            threads=args.threads,
            seconds=0.5 if args.quick else 2.0,
            device=args.device,
            phases=[],
        )
        worker = Worker(spec, env, log_dir)
        wait_ready(worker)
        worker.release()
        results.append({**worker.done, "when": when})
    return results


def cpu_description():
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "model": model,
        "cores_available": len(os.sched_getaffinity(0)),
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "load_average_at_start": os.getloadavg(),
    }


def cpu_seconds():
    """(seconds every CPU spent busy since boot, the CPU seconds of this
    process and of its finished workers), or None without `/proc/stat`."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: steal is time the
    # hypervisor gave to other machines, so it counts as busy.
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    return busy, own


def outside_cores_busy(at_start, at_end, wall_seconds):
    """How many cores other processes kept busy on average, from two
    `cpu_seconds()` readings; None where they are unknown."""
    if at_start is None or at_end is None or wall_seconds <= 0:
        return None
    busy, own = (end - start for start, end in zip(at_start, at_end))
    return round(max(busy - own, 0.0) / wall_seconds, 3)


def require_cuda():
    """Stop unless PyTorch sees a CUDA GPU (asked in a subprocess: this
    process stays free of PyTorch)."""
    check = subprocess.run(
        [sys.executable, "-c",
         "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
    )
    if check.stdout.strip() != "True":
        raise SystemExit(
            "--device cuda: PyTorch sees no CUDA GPU (torch.cuda.is_available()"
            f" is {check.stdout.strip() or check.stderr.strip()[-300:]}). "
            "--gpu-table --device cpu runs the GPU table on the CPU."
        )


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return run_worker(json.loads(args.worker))
    if args.device == "cuda":
        require_cuda()
    discriminator, generator = preset_configs(args.preset, args.vocab_size)
    if args.sequence_length > discriminator["max_sequence_length"]:
        raise SystemExit(
            f"--sequence-length {args.sequence_length} exceeds the preset's "
            f"max_sequence_length {discriminator['max_sequence_length']}."
        )
    env = allocator_environment(args.allocator, os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        OMP_NUM_THREADS=str(args.threads),
        PYTHONPATH=os.pathsep.join(
            [ROOT] + [p for p in [env.get("PYTHONPATH")] if p]
        ),
    )
    if args.gpu_table:
        # JAX would otherwise take 75% of the GPU at start-up, and its peak
        # memory would say nothing.
        env.update(XLA_PYTHON_CLIENT_PREALLOCATE="false")
    common = {
        "discriminator": discriminator,
        "generator": generator,
        "preset": args.preset,
        "batch_size": args.batch_size,
        "sequence_length": args.sequence_length,
        "warmup_steps": args.warmup_steps,
        "chunk_steps": args.chunk_steps,
        "rounds": args.rounds,
        "threads": args.threads,
        "jit_compile": args.jit_compile,
        "seed": args.seed,
        "device": args.device,
        "minimal_install": args.minimal_install,
    }
    comparisons = [] if args.skip_pretrain else [
        ("pretrain", variant_specs(args, args.precisions, None, common))
    ]
    if not args.skip_finetune:
        comparisons += [
            (task, variant_specs(args, args.finetune_precisions, task, common))
            for task in args.tasks
        ]

    started, cpu_seconds_at_start = time.time(), cpu_seconds()
    result = {
        "benchmark": "pretrain_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join(
            [os.path.basename(sys.argv[0])] + sys.argv[1:]
        ),
        "settings": {
            key: value
            for key, value in vars(args).items()
            if key not in ("worker", "output")
        },
        "discriminator": discriminator,
        "generator": generator,
        "allocator_environment": ALLOCATORS[args.allocator],
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_description(),
            "python": platform.python_version(),
        },
    }
    failures = []
    with tempfile.TemporaryDirectory(prefix="electra-bench-") as log_dir:
        print("Matmul peak ...", file=sys.stderr, flush=True)
        peaks = measure_peaks(args, env, log_dir, "before")
        if args.gpu_table:
            [(_, pretrain_specs)] = comparisons
            workers, failures = run_one_at_a_time(
                pretrain_specs, env, log_dir, args.rounds, args.time_limit
            )
            sections = [("pretrain", workers)]
        else:
            sections = run_sections(args, env, log_dir, comparisons)
            if not args.quick:
                peaks += measure_peaks(args, env, log_dir, "after")

    result["matmul_peaks"] = peaks
    peak = {
        precision: max(p[f"{precision}_flops"] for p in peaks)
        for precision in PRECISIONS
    }
    result["peak_flops"] = peak
    result["variants"] = []
    tables = []
    for title, workers in sections:
        rows = summarise(title, workers, args, discriminator, generator, peak)
        result["variants"] += rows
        tables.append(
            gpu_markdown_table(rows, args, failures)
            if args.gpu_table
            else markdown_table(title, rows, args)
        )
    if args.gpu_table:
        result["machine"]["gpu"] = peaks[0].get("gpu")
        result["failed_variants"] = failures
    result["wall_seconds"] = round(time.time() - started, 1)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["machine"]["outside_cores_busy"] = outside_cores_busy(
        cpu_seconds_at_start, cpu_seconds(), time.time() - started
    )
    result["tables"] = tables
    write_json(args.output, result)
    if args.device == "cuda":
        gpu = result["machine"]["gpu"]
        print(
            f"GPU: {gpu['name']}, {gpu['memory_mb']:,.0f} MB; torch "
            f"{peaks[0]['version']}, CUDA {gpu['cuda']}."
        )
    else:
        print_cpu_load(args, result["machine"])
    print(peak_line(peaks))
    for table in tables:
        print("\n" + table)
    minimal = "; Keras workers as a minimal install" * args.minimal_install
    print(
        f"\n{args.preset}, vocabulary {args.vocab_size}, sequence length "
        f"{args.sequence_length}, batch {args.batch_size}, {args.threads} "
        f"threads; median of {args.rounds} round(s) of {args.chunk_steps} "
        f"step(s) after {args.warmup_steps} warmup step(s); glibc malloc: "
        f"{allocator_description(args.allocator)}{minimal}. "
        f"{result['wall_seconds']:.0f} s in all. Wrote {args.output}"
    )
    return 1 if failures else 0


def run_one_at_a_time(specs, env, log_dir, rounds, time_limit):
    """The GPU table's schedule: each worker alone from start to exit.

    Returns the workers that finished and, for each one that did not,
    {"variant": name, "error": why}: one variant's failure (out of
    memory, a compiler error, the end of `time_limit` seconds) leaves the
    others' rows.
    """
    deadline = time.time() + time_limit if time_limit else None
    workers, failures = [], []
    for spec in specs:
        if deadline is not None and time.time() >= deadline:
            failures.append(
                {"variant": spec["name"], "error": "not run: time limit"}
            )
            continue
        print(f"  starting {spec['name']}", file=sys.stderr, flush=True)
        worker = Worker(spec, env, log_dir)
        stopped = threading.Event()
        if deadline is not None:
            # A hang (a compiler, a deadlock) must not take the whole budget.
            def stop(worker=worker, stopped=stopped):
                stopped.set()
                worker.process.kill()

            timer = threading.Timer(deadline - time.time(), stop)
            timer.start()
        try:
            wait_ready(worker)
            run_rounds([worker], ["train"], rounds)
            workers.append(worker)
        except RuntimeError as error:
            print(f"  {worker.name} FAILED", file=sys.stderr, flush=True)
            reason = "stopped at the time limit; " if stopped.is_set() else ""
            failures.append(
                {"variant": worker.name, "error": reason + str(error)}
            )
        finally:
            if deadline is not None:
                timer.cancel()
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
    return workers, failures


def run_sections(args, env, log_dir, comparisons):
    """The CPU tables' schedule: the variants of a section held at once,
    their timed chunks alternating. `comparisons` is [(title, specs)], a
    table each. Returns [(title, workers)]."""
    sections = []
    for title, specs in comparisons:
        phases = specs[0]["phases"] if specs else []
        backends = list(dict.fromkeys(s["backend"] for s in specs if "backend" in s))
        if args.quick or len(backends) < 2:
            sections += [(title, specs, phases)] if specs else []
            continue
        # A full run times one backend at a time, each against its own
        # transformers baseline: every variant of all three at once
        # (3-5 GB each for electra_small) needs more than 24 GB.
        baseline = [s for s in specs if "backend" not in s]
        for backend in backends:
            own = [s for s in specs if s.get("backend") == backend]
            sections.append((title, own + baseline, phases))
    # A full run sets up (and holds in memory) one section at a time;
    # --quick sets up everything at once, to finish sooner.
    groups = [sections] if args.quick else [[s] for s in sections]
    sections = []
    for group in groups:
        print(
            f"Setting up {' and '.join(t for t, _, _ in group)} "
            "variants ...",
            file=sys.stderr,
        )
        workers = start_workers(
            [spec for _, specs, _ in group for spec in specs],
            env,
            log_dir,
            args.setup_parallel,
        )
        by_name = {w.name: w for w in workers}
        try:
            for title, specs, phases in group:
                members = [by_name[spec["name"]] for spec in specs]
                run_rounds(members, phases, args.rounds)
                sections.append((title, members))
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.process.kill()
    return sections


def print_cpu_load(args, machine):
    """The CPU line, and a warning where other jobs were running."""
    cpu = machine["cpu"]
    print(
        f"CPU: {cpu['model']}, {args.threads} threads; avx512_bf16 "
        f"{'yes' if cpu['avx512_bf16'] else 'no'}, AMX "
        f"{'yes' if cpu['amx_bf16'] else 'no'}; load average at start "
        f"{cpu['load_average_at_start'][0]:.1f}."
    )
    # The load average counts the benchmark's own workers at the end, and
    # at the start jobs that ended a minute earlier: the CPU time of
    # everything else says whether others ran alongside. Without it (no
    # /proc/stat), the load average at the start.
    outside = machine["outside_cores_busy"]
    if outside is not None:
        print(f"Other processes kept {outside:.2f} cores busy on average.")
        others_ran = outside > 0.25
    else:
        others_ran = cpu["load_average_at_start"][0] > 0.5
    if others_ran:
        print(
            f"WARNING: other jobs were running on the "
            f"{cpu['cores_available']} cores; do not trust the ratios."
            + (
                " PyTorch with several threads slows down the most (its "
                "OpenMP threads wait for busy cores); --threads 1 suffers "
                "less."
                if args.threads > 1
                else ""
            )
        )


def variant_specs(args, precisions, task, common):
    """One worker spec per backend and precision, and per transformers
    baseline: eager, and in the GPU table also `torch.compile`. `task` is
    None for pre-training, else one of `TASKS`."""
    kind = "finetune" if task else "pretrain"
    suffix = "-" + task.replace("_", "-") if task else ""
    phases = ["train", "predict"] if task else ["train"]
    baselines = [] if args.no_hf else ["eager"]
    if args.gpu_table and not args.no_hf:
        baselines.append("compile")
    specs = []
    for precision in precisions:
        for backend in args.backends:
            specs.append(
                {
                    **common,
                    "name": f"keras-{backend}{suffix}/{precision}",
                    "kind": f"keras_{kind}",
                    "task": task,
                    "backend": backend,
                    "jit_compile": (
                        args.torch_jit_compile
                        if backend == "torch"
                        else args.jit_compile
                    ),
                }
            )
        for mode in baselines:
            specs.append(
                {
                    **common,
                    "name": f"hf-torch-{mode}{suffix}/{precision}",
                    "kind": f"hf_{kind}",
                    "task": task,
                    "hf_mode": mode,
                    "compile_backend": (
                        args.hf_compile_backend if mode == "compile" else None
                    ),
                }
            )
        for spec in specs[-len(args.backends) - len(baselines) :]:
            spec.update(precision=precision, phases=phases)
    return specs


def summarise(title, workers, args, discriminator, generator, peak):
    tokens = args.batch_size * args.sequence_length
    rows = []
    for worker in workers:
        spec = worker.spec
        row = {
            "section": title,
            "variant": worker.name,
            "kind": spec["kind"],
            "precision": spec["precision"],
            "setup_seconds": worker.ready["setup_seconds"],
            "peak_rss_mb": worker.done["peak_rss_mb"],
            "rss_after_import_mb": worker.ready["rss_after_import_mb"],
            "versions": worker.ready["versions"],
            "details": worker.done.get("details", {}),
            "chunks": worker.chunks,
            "busy_spans": worker.busy_spans,
        }
        if args.gpu_table:
            row.update(
                peak_gpu_mb=worker.done["peak_gpu_mb"],
                compiled=compiled_label(spec, row["details"]),
                # The worker's process, start to exit (seconds since the
                # epoch): one worker at a time, these never overlap.
                process_span=[
                    round(worker.started_at, 2),
                    round(worker.finished_at, 2),
                ],
            )
        for phase in spec["phases"]:
            seconds = step_seconds(worker, phase)
            if title == "pretrain":
                step_flops = flops.pretraining_step_flops(
                    "electra", discriminator, generator, args.batch_size,
                    args.sequence_length, MASK_RATE,
                )
            else:
                num_classes = TASKS[spec["task"]][2]
                step_flops = flops.finetuning_step_flops(
                    spec["task"], discriminator, args.batch_size,
                    args.sequence_length, num_classes or 2,
                    training=phase == "train",
                )
            row[phase] = {
                "step_ms": round(1000 * seconds, 2),
                "tokens_per_second": round(tokens / seconds, 1),
                "model_flops_per_step": step_flops,
                "tflops_per_second": round(step_flops / seconds / 1e12, 4),
                "mfu": round(
                    step_flops / seconds / peak[spec["precision"]], 4
                ),
            }
        rows.append(row)
    # Ratios against the transformers rows of the same section: vs_hf_bf16,
    # or in the GPU table vs_hf_eager_bf16 and vs_hf_compile_bf16.
    for phase in ("train", "predict"):
        reference = {
            "hf_"
            + (f"{w.spec['hf_mode']}_" if args.gpu_table else "")
            + r["precision"]: r[phase]["tokens_per_second"]
            for w, r in zip(workers, rows)
            if r["kind"].startswith("hf") and phase in r
        }
        for row in rows:
            if phase in row:
                for baseline, tokens_per_second in reference.items():
                    row[phase][f"vs_{baseline}"] = round(
                        row[phase]["tokens_per_second"] / tokens_per_second, 2
                    )
    return rows


def compiled_label(spec, details):
    """How a variant's step was compiled, for the GPU table."""
    if spec["kind"].startswith("hf"):
        backend = spec["compile_backend"]
        if backend is None:
            return "no"
        return "torch.compile" + ("" if backend == "inductor" else
                                  f" ({backend})")
    if not details["effective_jit_compile"]:
        return "no"
    return "torch.compile" if spec["backend"] == "torch" else "XLA"


def markdown_table(title, rows, args):
    phases = ["train"] if title == "pretrain" else ["train", "predict"]
    header = ["variant"]
    for phase in phases:
        label = "step" if phase == "train" else "predict"
        header += [
            f"{label} ms",
            f"{label} tokens/s",
            "× HF fp32",
            "× HF bf16",
            "MFU",
        ]
    # The last column is what the model and its step added to the process:
    # the import of keras-hub brings TensorFlow (0.6-0.8 GB) on every
    # backend, which transformers does not load.
    header += ["peak RSS MB", "RSS after imports MB", "peak - imports MB"]
    lines = [
        f"**{title}**: " + (
            "whole pre-training step (generator + discriminator)"
            if title == "pretrain"
            else f"{TASKS[title][0]} vs {TASKS[title][1]}, train step and "
            "predict"
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|---" + "|---:" * (len(header) - 1) + "|",
    ]
    for row in rows:
        cells = [row["variant"]]
        for phase in phases:
            stats = row[phase]
            cells += [
                f"{stats['step_ms']:.1f}",
                f"{stats['tokens_per_second']:,.0f}",
                _ratio(stats.get("vs_hf_fp32")),
                _ratio(stats.get("vs_hf_bf16")),
                f"{100 * stats['mfu']:.1f}%",
            ]
        cells += [
            f"{row['peak_rss_mb']:,.0f}",
            f"{row['rss_after_import_mb']:,.0f}",
            f"{row['peak_rss_mb'] - row['rss_after_import_mb']:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gpu_markdown_table(rows, args, failures):
    """The GPU table: one ratio column per transformers baseline, the peak
    GPU memory, the setup time (compiling included) and the failures."""
    baselines = [
        (f"vs_hf_{mode}_{precision}", f"× HF {mode} {precision}")
        for precision in args.precisions
        for mode in ("eager", "compile")
    ]
    header = ["variant", "compiled", "step ms", "tokens/s"]
    header += [label for _, label in baselines]
    header += ["MFU", "peak GPU MB", "peak RSS MB", "setup s"]
    lines = [
        f"**pretrain on {args.device}**: whole pre-training step "
        "(generator + discriminator), one variant at a time",
        "",
        "| " + " | ".join(header) + " |",
        "|---|---" + "|---:" * (len(header) - 2) + "|",
    ]
    for row in rows:
        stats = row["train"]
        gpu_mb = row["peak_gpu_mb"]
        cells = [
            row["variant"],
            row["compiled"],
            f"{stats['step_ms']:.1f}",
            f"{stats['tokens_per_second']:,.0f}",
            *(_ratio(stats.get(key)) for key, _ in baselines),
            f"{100 * stats['mfu']:.1f}%",
            "–" if gpu_mb is None else f"{gpu_mb:,.0f}",
            f"{row['peak_rss_mb']:,.0f}",
            f"{row['setup_seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for failure in failures:
        why = failure["error"].splitlines()[0][:100]
        cells = [failure["variant"], f"FAILED: {why}"]
        lines.append("| " + " | ".join(cells + [""] * (len(header) - 2)) + " |")
    return "\n".join(lines)


def _ratio(value):
    return "–" if value is None else f"{value:.2f}"


def peak_line(peaks):
    def rate(peak, precision):
        size = peak[f"{precision}_size"]
        at = f" (at {size})" if size != peak["size"] else ""
        return f"{precision} {peak[f'{precision}_flops'] / 1e9:,.0f}{at}"

    parts = [
        f"{p['library']} ({p['when']}) {rate(p, 'fp32')} / {rate(p, 'bf16')}"
        for p in peaks
    ]
    return (
        "Matmul peak, GFLOP/s (MFU uses the best per precision): "
        + "; ".join(parts)
    )


# === Workers ===============================================================


class Conductor:
    """The worker's side of the protocol: report, then wait for 'go'.

    Each report carries `busy`, the span since the worker last woke:
    what it did before reporting, timed or not."""

    def __init__(self):
        self.out = os.fdopen(int(os.environ["BENCH_RESULT_FD"]), "w")
        self.started = time.perf_counter()
        self.woke_at = time.time()

    def send(self, **message):
        busy = [round(self.woke_at, 4), round(time.time(), 4)]
        self.out.write(json.dumps({**message, "busy": busy}) + "\n")
        self.out.flush()

    def wait(self):
        if sys.stdin.readline().strip() != "go":
            sys.exit(0)
        self.woke_at = time.time()


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_batches(spec, count):
    """`count` batches of `[CLS] random ids [SEP]` and the task's targets
    (named as transformers' arguments), the same in every worker."""
    import numpy as np

    rng = np.random.default_rng(spec["seed"])
    vocab = spec["discriminator"]["vocab_size"]
    rows, length = count * spec["batch_size"], spec["sequence_length"]
    token_ids = rng.integers(MASK + 1, vocab, size=(rows, length), dtype="int32")
    token_ids[:, 0], token_ids[:, -1] = CLS, SEP
    inputs = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }
    task = spec.get("task")
    if task == "question_answerer":
        # An answer span inside the sequence, start <= end.
        start = rng.integers(1, length - 1, size=rows, dtype="int32")
        end = np.minimum(start + rng.integers(0, 8, size=rows), length - 2)
        targets = {"start_positions": start, "end_positions": end.astype("int32")}
    elif task == "token_classifier":
        labels = rng.integers(0, TASKS[task][2], size=(rows, length))
        targets = {"labels": labels.astype("int32")}
    else:
        targets = {"labels": rng.integers(0, 2, size=rows, dtype="int32")}
    return inputs, targets


def run_worker(spec):
    # Fewer threads than cores: pin the process to that many cores, before
    # any library sizes its thread pools (XLA has no thread-count setting).
    cores = sorted(os.sched_getaffinity(0))
    if spec["threads"] < len(cores):
        os.sched_setaffinity(0, cores[: spec["threads"]])
    conductor = Conductor()
    kind = spec["kind"]
    if kind == "peak":
        return matmul_peak_worker(spec, conductor)
    runner = {
        "keras_pretrain": keras_worker,
        "keras_finetune": keras_worker,
        "hf_pretrain": hf_pretrain_worker,
        "hf_finetune": hf_finetune_worker,
    }[kind]
    details = runner(spec, conductor)
    # What the worker ran with: the orchestrator's settings, or the shell's.
    details["allocator_environment"] = {
        name: os.environ[name]
        for name in ALLOCATOR_VARIABLES
        if name in os.environ
    }
    conductor.send(
        phase="done",
        peak_rss_mb=round(peak_rss_mb(), 1),
        peak_gpu_mb=peak_gpu_mb(spec),
        details=details,
    )
    return 0


def peak_gpu_mb(spec):
    """The most GPU memory the worker's allocator handed out (not what its
    cache reserved), in MiB; None off the GPU."""
    if spec["device"] != "cuda":
        return None
    if spec.get("backend") == "jax":
        import jax

        # None where the runtime keeps no statistics.
        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
    else:
        import torch

        peak = torch.cuda.max_memory_allocated()
    return None if peak is None else round(peak / 2**20, 1)


def keras_device(backend):
    """Where Keras puts the worker's tensors: "cpu" or "cuda"."""
    import keras

    if backend == "jax":
        import jax

        platform = jax.devices()[0].platform
        return "cuda" if platform == "gpu" else platform
    if backend == "torch":
        return keras.ops.zeros(()).device.type
    import tensorflow as tf

    return "cuda" if tf.config.list_logical_devices("GPU") else "cpu"


def total_steps(spec):
    return spec["warmup_steps"] + spec["rounds"] * spec["chunk_steps"]


def ready(conductor, versions, rss_after_import):
    conductor.send(
        phase="ready",
        setup_seconds=round(time.perf_counter() - conductor.started, 2),
        rss_after_import_mb=round(rss_after_import, 1),
        versions=versions,
    )


def keras_worker(spec, conductor):
    os.environ["KERAS_BACKEND"] = spec["backend"]
    if spec["minimal_install"]:
        for name in MINIMAL_INSTALL_ABSENT[spec["backend"]]:
            sys.modules[name] = None  # `import` fails: as if not installed
    import keras
    import keras_hub

    threads = spec["threads"]
    if spec["backend"] == "torch":
        import torch

        torch.set_num_threads(threads)
    elif spec["backend"] == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras_electra

    backend_module = {"tensorflow": "tensorflow", "jax": "jax",
                      "torch": "torch"}[spec["backend"]]
    versions = {
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        backend_module: __import__(backend_module).__version__,
    }
    rss_after_import = rss_mb()
    device = keras_device(spec["backend"])
    if device != spec["device"]:
        # JAX, for one, carries on on the CPU when its CUDA plugin fails.
        raise RuntimeError(
            f"Keras on {spec['backend']} runs on {device}, not on "
            f"{spec['device']}."
        )
    keras.utils.set_random_seed(spec["seed"])
    keras.config.set_dtype_policy(KERAS_POLICY[spec["precision"]])
    jit_compile = {"true": True, "false": False, "auto": "auto"}[
        spec["jit_compile"]
    ]
    if spec["backend"] == "torch" and jit_compile is True:
        # torch.compile recompiles during the first steps.
        spec["warmup_steps"] = max(spec["warmup_steps"], TORCH_COMPILE_WARMUP)
    vocab_size = spec["discriminator"]["vocab_size"]
    data, targets = random_batches(spec, total_steps(spec))
    if spec["kind"] == "keras_pretrain":
        model = keras_electra.ElectraPretrainer.from_preset(
            spec["preset"],
            vocab_size=vocab_size,
            seed=spec["seed"],
            approximate_gelu=False,
        )
        sizes = model.generator.backbone.get_config()
        for key in ("hidden_dim", "num_heads", "intermediate_dim"):
            if sizes[key] != spec["generator"][key]:
                raise RuntimeError(
                    f"Generator {key} is {sizes[key]}, the FLOP count "
                    f"assumes {spec['generator'][key]}."
                )
        model.compile(jit_compile=jit_compile)
        y = None
    else:
        model_name, _, num_classes = TASKS[spec["task"]]
        head = {} if num_classes is None else {"num_classes": num_classes}
        model = getattr(keras_electra, model_name).from_preset(
            spec["preset"],
            vocab_size=vocab_size,
            approximate_gelu=False,
            **head,
        )
        # As a user compiles it: the task's optimizer, loss and metrics.
        model.compile(jit_compile=jit_compile)
        y = targets.get("labels", targets)
    clock = chunk_clock(spec, conductor, versions, rss_after_import)
    model.fit(
        data,
        y,
        batch_size=spec["batch_size"],
        epochs=1,
        shuffle=False,
        callbacks=[clock],
        verbose=0,
    )
    details = {
        "device": device,
        "imported": sorted(
            name for name in ("tensorflow", "jax", "torch", "matplotlib")
            if sys.modules.get(name) is not None
        ),
        "effective_jit_compile": model.jit_compile,
        "warmup_steps": spec["warmup_steps"],
        "parameters": model.count_params(),
        "loss_first_timed": clock.losses[0],
        "loss_last": clock.losses[-1],
    }
    if "predict" in spec["phases"]:
        rows = (1 + spec["rounds"] * spec["chunk_steps"]) * spec["batch_size"]
        model.predict(
            {k: v[:rows] for k, v in data.items()},
            batch_size=spec["batch_size"],
            callbacks=[predict_clock(spec, conductor)],
            verbose=0,
        )
    return details


def chunk_clock(spec, conductor, versions, rss_after_import):
    """A `fit()` callback that times chunks of steps and pauses in between.

    After the warmup steps it reports "ready"; after each chunk it reports
    the chunk's time; then it waits for the next "go".
    """
    import keras

    class ChunkClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []
            self.start = None

        def on_train_batch_end(self, batch, logs=None):
            done = batch + 1
            warmup, chunk = spec["warmup_steps"], spec["chunk_steps"]
            if done < warmup or (done - warmup) % chunk:
                return
            # A Python float of the loss waits for the step to finish.
            self.losses.append(float(keras.ops.convert_to_numpy(logs["loss"])))
            if done == warmup:
                ready(conductor, versions, rss_after_import)
            else:
                conductor.send(
                    phase="train",
                    seconds=time.perf_counter() - self.start,
                    steps=chunk,
                    loss=self.losses[-1],
                )
            # The next chunk; after the last one, a hold until released.
            conductor.wait()
            self.start = time.perf_counter()

    return ChunkClock()


def predict_clock(spec, conductor):
    """A `predict()` callback that times chunks of steps after the first
    (untimed) step and pauses in between, as `chunk_clock` does in `fit()`."""
    import keras

    class PredictClock(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            # NumPy outputs wait for the step to finish. (Keras flattens
            # a dict of outputs into the logs, else they are "outputs".)
            keras.tree.map_structure(keras.ops.convert_to_numpy, logs)
            chunk = spec["chunk_steps"]
            if batch % chunk:
                return
            if batch:
                conductor.send(
                    phase="predict",
                    seconds=time.perf_counter() - self.start,
                    steps=chunk,
                )
            else:
                conductor.send(phase="next", next_phase="predict")
            # The next chunk; after the last one, a hold until released.
            conductor.wait()
            self.start = time.perf_counter()

    return PredictClock()


def hf_setup(spec):
    import torch
    import transformers

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    versions = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    return torch, transformers, versions


def hf_config(transformers, config, **kwargs):
    return transformers.ElectraConfig(
        vocab_size=config["vocab_size"],
        embedding_size=config["embedding_dim"],
        hidden_size=config["hidden_dim"],
        num_hidden_layers=config["num_layers"],
        num_attention_heads=config["num_heads"],
        intermediate_size=config["intermediate_dim"],
        max_position_embeddings=config["max_sequence_length"],
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        **kwargs,
    )


def hf_adamw(torch, modules, learning_rate):
    """AdamW over the modules' distinct parameters, no decay on LN/bias."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for name, parameter in module.named_parameters():
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            if "LayerNorm" in name or name.endswith("bias"):
                no_decay.append(parameter)
            else:
                decay.append(parameter)
    groups = [
        {"params": decay, "weight_decay": 0.01},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    parameters = decay + no_decay
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, eps=1e-6)
    return optimizer, parameters


def hf_timed_loop(spec, conductor, phase, step, versions, rss_after_import,
                  warmup, on_ready=None):
    """Untimed warmup (only for the first phase), then timed chunks, then
    a hold until released; `on_ready()` runs after the warmup."""
    if warmup:
        for _ in range(spec["warmup_steps"]):
            step()
        if on_ready:
            on_ready()
        ready(conductor, versions, rss_after_import)
    else:
        step()
        conductor.send(phase="next", next_phase=phase)
    for _ in range(spec["rounds"]):
        conductor.wait()
        start = time.perf_counter()
        for _ in range(spec["chunk_steps"]):
            loss = step()
        conductor.send(
            phase=phase,
            seconds=time.perf_counter() - start,
            steps=spec["chunk_steps"],
            loss=loss,
        )
    # A hold until released.
    conductor.wait()


def hf_pretrain_worker(spec, conductor):
    torch, transformers, versions = hf_setup(spec)
    rss_after_import = rss_mb()
    device = spec["device"]
    generator = transformers.ElectraForMaskedLM(
        hf_config(transformers, spec["generator"])
    )
    discriminator = transformers.ElectraForPreTraining(
        hf_config(transformers, spec["discriminator"])
    )
    # One embedding block for both towers; the generator's output layer is
    # the (shared) word embedding matrix.
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = (
        discriminator.electra.embeddings.word_embeddings.weight
    )
    generator.to(device).train()
    discriminator.to(device).train()
    optimizer, parameters = hf_adamw(torch, [discriminator, generator], 5e-4)
    run_generator, run_discriminator = generator, discriminator
    compile_backend = spec.get("compile_backend")
    if compile_backend:
        run_generator = torch.compile(generator, backend=compile_backend)
        run_discriminator = torch.compile(
            discriminator, backend=compile_backend
        )
        # The first steps compile (and may recompile): untimed.
        spec["warmup_steps"] = max(spec["warmup_steps"], TORCH_COMPILE_WARMUP)
    data, _ = random_batches(spec, total_steps(spec))
    batches = [
        {
            key: torch.from_numpy(
                data[key][i : i + spec["batch_size"]]
            ).long().to(device)
            for key in ("token_ids", "segment_ids", "padding_mask")
        }
        for i in range(0, len(data["token_ids"]), spec["batch_size"])
    ]
    bf16 = spec["precision"] == "bf16"
    max_masked = flops.num_masked_positions(spec["sequence_length"], MASK_RATE)
    cursor = iter(range(10**9))

    def step():
        batch = batches[next(cursor) % len(batches)]
        input_ids = batch["token_ids"]
        attention_mask = batch["padding_mask"]
        token_type_ids = batch["segment_ids"]
        masked = original_masking(torch, input_ids, attention_mask, max_masked)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            generator_output = run_generator(
                input_ids=masked["masked_ids"],
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                labels=masked["labels"],
            )
            with torch.no_grad():
                positions = masked["positions"]
                logits = torch.gather(
                    generator_output.logits.float(),
                    1,
                    positions[..., None].expand(
                        -1, -1, generator_output.logits.shape[-1]
                    ),
                )
                # Inverse-transform sampling, as `softmax_sample`, with
                # PyTorch's fastest tool for it (searchsorted: 4x Gumbel-max
                # and 2x counting, at electra_small's logits on 2 cores).
                cumulative = torch.cumsum(torch.softmax(logits, -1), -1)
                uniform = torch.rand(
                    logits.shape[:-1] + (1,), device=device
                ) * cumulative[..., -1:]
                sampled = torch.searchsorted(
                    cumulative, uniform, right=True
                ).squeeze(-1).clamp_max(logits.shape[-1] - 1)
                sampled = torch.where(
                    masked["weights"], sampled, torch.gather(
                        input_ids, 1, positions
                    )
                )
                corrupted = input_ids.scatter(1, positions, sampled)
                replaced = (corrupted != input_ids).long()
            discriminator_output = run_discriminator(
                input_ids=corrupted,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                labels=replaced,
            )
            loss = (
                generator_output.loss
                + DISCRIMINATOR_WEIGHT * discriminator_output.loss
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        return loss.item()

    details = {
        "attn_implementation": discriminator.config._attn_implementation,
        "parameters": sum(p.numel() for p in parameters),
    }
    on_ready = None
    if compile_backend:
        graphs = torch._dynamo.utils.counters["stats"]

        def on_ready():
            details["graphs_compiled_in_warmup"] = graphs["unique_graphs"]

    hf_timed_loop(spec, conductor, "train", step, versions, rss_after_import,
                  warmup=True, on_ready=on_ready)
    if compile_backend:
        details.update(
            compile_backend=compile_backend,
            warmup_steps=spec["warmup_steps"],
            # Not 0: compiling went on in the timed rounds.
            graphs_compiled_while_timed=graphs["unique_graphs"]
            - details["graphs_compiled_in_warmup"],
        )
    return details


def original_masking(torch, input_ids, attention_mask, max_masked):
    """15% of the real, non-special tokens; 85% of them shown as [MASK]."""
    device = input_ids.device
    is_real = attention_mask.bool()
    candidate = is_real.clone()
    for special in (PAD, CLS, SEP, MASK):
        candidate &= input_ids != special
    count = torch.round(is_real.sum(1).float() * MASK_RATE).long()
    count = torch.minimum(count.clamp(1, max_masked), candidate.sum(1))
    scores = torch.rand(input_ids.shape, device=device)
    scores = scores.masked_fill(~candidate, -1.0)
    positions = torch.topk(scores, max_masked, dim=1).indices
    weights = torch.arange(max_masked, device=device)[None, :] < count[:, None]
    is_masked = torch.zeros_like(is_real).scatter(1, positions, weights)
    show_mask = is_masked & (
        torch.rand(input_ids.shape, device=device) < MASK_TOKEN_RATE
    )
    labels = torch.where(is_masked, input_ids, torch.full_like(input_ids, -100))
    return {
        "masked_ids": input_ids.masked_fill(show_mask, MASK),
        "labels": labels,
        "positions": positions,
        "weights": weights,
    }


def hf_finetune_worker(spec, conductor):
    torch, transformers, versions = hf_setup(spec)
    rss_after_import = rss_mb()
    _, model_name, num_classes = TASKS[spec["task"]]
    head = {} if num_classes is None else {"num_labels": num_classes}
    model = getattr(transformers, model_name)(
        hf_config(transformers, spec["discriminator"], **head)
    )
    optimizer, _ = hf_adamw(torch, [model], 1e-4)
    inputs, targets = random_batches(spec, total_steps(spec))
    names = {
        "input_ids": "token_ids",
        "token_type_ids": "segment_ids",
        "attention_mask": "padding_mask",
    }
    size = spec["batch_size"]
    batches = [
        {
            name: torch.from_numpy(array[i : i + size]).long()
            for name, array in [
                *((name, inputs[key]) for name, key in names.items()),
                *targets.items(),
            ]
        }
        for i in range(0, len(inputs["token_ids"]), size)
    ]
    bf16 = spec["precision"] == "bf16"
    cursor = iter(range(10**9))

    def train_step():
        model.train()
        batch = batches[next(cursor) % len(batches)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    def predict_step():
        model.eval()
        batch = batches[next(cursor) % len(batches)]
        features = {name: batch[name] for name in names}
        with torch.inference_mode(), torch.autocast(
            "cpu", dtype=torch.bfloat16, enabled=bf16
        ):
            # Every output to NumPy, as Keras' predict() hands them over.
            outputs = [x.float().numpy() for x in model(**features).to_tuple()]
        return float(outputs[0].flat[0])

    hf_timed_loop(spec, conductor, "train", train_step, versions,
                  rss_after_import, warmup=True)
    hf_timed_loop(spec, conductor, "predict", predict_step, versions,
                  rss_after_import, warmup=False)
    return {"attn_implementation": model.config._attn_implementation}


def matmul_peak_worker(spec, conductor):
    """Best FLOP/s of large square matmuls, float32 and bfloat16."""
    size, threads = spec["size"], spec["threads"]
    result = {"library": spec["library"], "size": size}
    if spec["library"] == "torch":
        import torch

        torch.set_num_threads(threads)
        result["version"] = torch.__version__
        device = spec["device"]
        if device == "cuda":
            properties = torch.cuda.get_device_properties(0)
            result["gpu"] = {
                "name": properties.name,
                "memory_mb": round(properties.total_memory / 2**20),
                "cuda": torch.version.cuda,
            }

            def sync(product):
                torch.cuda.synchronize()
        else:

            def sync(product):
                return product

        def products(dtype, n):
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            return lambda: torch.matmul(a, b)

        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    else:
        import jax
        import jax.numpy as jnp

        result["version"] = jax.__version__
        dot = jax.jit(jnp.dot)

        def sync(product):
            product.block_until_ready()

        def products(dtype, n):
            key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
            a = jax.random.normal(key_a, (n, n), dtype)
            b = jax.random.normal(key_b, (n, n), dtype)
            return lambda: dot(a, b)

        dtypes = {"fp32": jnp.float32, "bf16": jnp.bfloat16}
    for precision, dtype in dtypes.items():
        flops, measured_size = _best_flops(
            lambda n, dtype=dtype: products(dtype, n), size, sync,
            spec["seconds"],
        )
        result[f"{precision}_flops"] = flops
        result[f"{precision}_size"] = measured_size
    conductor.send(
        phase="ready",
        setup_seconds=round(time.perf_counter() - conductor.started, 2),
    )
    conductor.wait()
    conductor.send(phase="done", **result)
    return 0


def _best_flops(products, size, sync, seconds, probe_size=512):
    """(best FLOP/s, size) of `size` x `size` products over `seconds`, at
    least 3 timed after a warmup; `products(n)` returns a call that runs
    one at size n.

    A probe at `probe_size` first: where it says one product at `size`
    would take longer than `seconds` (bfloat16 on a CPU without bfloat16
    instructions: PyTorch takes a minute at 2048, some 300 times its
    float32 time), the probe's own products are the measurement.
    """
    def best_over(run, n, seconds):
        sync(run())  # warmup / compile
        best, deadline, repeats = 0.0, time.perf_counter() + seconds, 0
        while repeats < 3 or time.perf_counter() < deadline:
            start = time.perf_counter()
            sync(run())
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
            repeats += 1
        return best

    if size > probe_size:
        probe = best_over(products(probe_size), probe_size, 0)
        if 2 * size**3 / probe > seconds:
            return probe, probe_size
    return best_over(products(size), size, seconds), size


if __name__ == "__main__":
    sys.exit(main())
