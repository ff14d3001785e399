"""How much pre-training does the demo's model need before it pays off?

`make demo` pre-trains a small ELECTRA (the `electra_demo` preset and
`keras_electra.training.runs.DEMO_PRETRAINING`) for 25 minutes on 2 CPU cores, and at that compute
the fine-tuned classifier does not beat the same classifier trained from
random weights (benchmarks/RESULTS.md, "What the demo shows"). This benchmark runs the same model,
data, pre-training settings and fine-tuning recipe for many more steps, on
an accelerator, and fine-tunes snapshots of the encoder taken along the way:
where the accuracy curve leaves the from-scratch line is the budget the demo
would need.

Two steps, so that the accelerator's machine needs neither TensorFlow nor a
network connection:

    # 1. Where TensorFlow is: the demo's corpus, vocabulary, packed
    #    examples and tokenized movie reviews, as arrays (about 4 minutes).
    python benchmarks/pretraining_budget.py prepare --data budget.npz
    # 2. Anywhere with keras and keras-hub, e.g. a GPU machine:
    KERAS_BACKEND=jax python benchmarks/pretraining_budget.py run \\
        --data budget.npz --minutes 4

`run` pre-trains each objective of `--objectives` in its own process, all
at the same time. Each fits its step budget to `--minutes` from a timing of
its first steps (the first objective times its steps before the others
start, so its timing is the device's throughput without neighbours), or
runs `--steps`. The learning rate warms up and decays linearly over the
run, as in the demo. Snapshots of the encoder at 1/3**k of the run
(`--snapshots`: k < 4 by default) are fine-tuned by `--workers` processes as
they appear, with the demo's fine-tuning settings (sequence length 64,
learning rate 3e-4, no layer-wise decay, mean pooling, 3 epochs) and
`--seeds` seeds, next to the same classifier from random weights
(`--skip-baseline` leaves it out). An early snapshot is of a run whose
learning rate had not decayed yet, so it understates what a run of that
length would reach.

Prints a markdown table (test and dev accuracy, mean +- std over seeds, per
objective and step) and writes it, with every fine-tuning run and the
pre-training throughput, to `<output>/pretraining_budget.json`.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra.pretraining.pretrainer import OBJECTIVES  # noqa: E402
from keras_electra.training.optimizers import pretraining_optimizer  # noqa: E402
from keras_electra.training.runs import DEMO_FINETUNING  # noqa: E402
from keras_electra.training.runs import DEMO_PRESET  # noqa: E402
from keras_electra.training.runs import DEMO_PRETRAINING  # noqa: E402
from keras_electra.training.runs import StepClock  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

SPLITS = ("train", "dev", "test")
FEATURES = ("token_ids", "segment_ids", "padding_mask")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    formatter = argparse.ArgumentDefaultsHelpFormatter
    prepare = commands.add_parser(
        "prepare",
        help="Write the demo's data as arrays (needs TensorFlow).",
        formatter_class=formatter,
    )
    prepare.add_argument("--data", required=True, help="Output .npz file.")
    prepare.add_argument(
        "--work-dir",
        default=os.path.join("out", "pretraining_budget_data"),
        help="Folder for the vocabulary and the example shards.",
    )
    run = commands.add_parser(
        "run",
        help="Pre-train, snapshot and fine-tune (no TensorFlow needed).",
        formatter_class=formatter,
    )
    run.add_argument("--data", required=True, help="The .npz from `prepare`.")
    run.add_argument(
        "--output",
        default=os.path.join("out", "pretraining_budget"),
        help="Folder for snapshots, logs and the results.",
    )
    run.add_argument(
        "--minutes",
        type=float,
        default=4.0,
        help="Pre-training time budget of each objective (run side by side).",
    )
    run.add_argument(
        "--objectives",
        default="electra,mlm",
        help="Comma-separated `ElectraPretrainer` objectives.",
    )
    run.add_argument(
        "--steps",
        type=int,
        help="Pre-training steps instead of fitting them to --minutes, which "
        "then only bounds the time pre-training may take.",
    )
    run.add_argument(
        "--snapshots",
        type=int,
        default=4,
        help="Snapshots to fine-tune: at 1/3**k of the run, k < this.",
    )
    run.add_argument(
        "--skip-baseline",
        action="store_true",
        help="Leave out the classifier from random weights (its seeds give "
        "the same scores on every run, e.g. one measured before).",
    )
    run.add_argument("--seeds", type=int, default=3, help="Fine-tuning seeds.")
    run.add_argument(
        "--workers", type=int, default=2, help="Fine-tuning processes."
    )
    run.add_argument(
        "--steps-per-execution",
        type=int,
        help="Keras `steps_per_execution` (fewer host round trips); default "
        "10, and 1 on PyTorch, which supports no other.",
    )
    run.add_argument(
        "--temperature",
        type=float,
        default=DEMO_PRETRAINING["temperature"],
        help="The generator's sampling temperature (ELECTRA objectives); "
        "the demo's by default.",
    )
    # The processes `run` starts.
    for name in ("pretrain-worker", "finetune-worker"):
        worker = commands.add_parser(name, help="(started by `run`)")
        worker.add_argument("--data", required=True)
        worker.add_argument("--output", required=True)
        worker.add_argument("--objective")
        worker.add_argument("--minutes", type=float)
        worker.add_argument("--objectives")
        worker.add_argument("--seeds", type=int)
        worker.add_argument("--steps", type=int)
        worker.add_argument("--snapshots", type=int)
        worker.add_argument("--skip-baseline", action="store_true")
        worker.add_argument("--steps-per-execution", type=int)
        worker.add_argument("--temperature", type=float)
        worker.add_argument("--deadline", type=float)
    return parser


# === prepare: the demo's data, as arrays ===


def prepare(args):
    from keras_electra import data as datasets
    from keras_electra import pretraining as pretraining_data
    from keras_electra.data.in_domain import write_in_domain_corpus
    from keras_electra.pretraining.preparation import prepare_examples
    from keras_electra.pretraining.preparation import prepare_vocabulary
    from keras_electra.training.finetuning import classification_dataset

    os.makedirs(args.work_dir, exist_ok=True)
    corpus = datasets.demo_corpus()
    reviews = datasets.movie_reviews(seed=0)
    in_domain = write_in_domain_corpus(
        reviews, os.path.join(args.work_dir, "in_domain.txt")
    )
    corpus += [in_domain] * DEMO_PRETRAINING["in_domain_copies"]
    # As recipes/pretrain.py prepares them, with its default seed.
    tokenizer = prepare_vocabulary(
        corpus,
        os.path.join(args.work_dir, "vocab.txt"),
        vocabulary_size=DEMO_PRETRAINING["vocabulary_size"],
    )
    examples_dir = os.path.join(args.work_dir, "examples")
    prepare_examples(
        corpus,
        tokenizer,
        examples_dir,
        max_sequence_length=DEMO_PRETRAINING["max_sequence_length"],
    )
    arrays = {name: [] for name in FEATURES}
    for batch in pretraining_data.pretraining_dataset(
        examples_dir,
        batch_size=4096,
        shuffle_buffer=0,
        repeat=False,
        drop_remainder=False,
    ):
        for name in FEATURES:
            arrays[name].append(batch[name].numpy())
    data = {
        "pretrain_token_ids": np.concatenate(arrays["token_ids"]).astype("uint16"),
        "pretrain_segment_ids": np.concatenate(arrays["segment_ids"]).astype("uint8"),
        "pretrain_padding_mask": np.concatenate(arrays["padding_mask"]).astype("bool"),
        "vocabulary": np.array(tokenizer.get_vocabulary()),
    }
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        tokenizer, sequence_length=DEMO_FINETUNING["max_sequence_length"]
    )
    for split in SPLITS:
        packed = {name: [] for name in FEATURES}
        for x, _ in classification_dataset(preprocessor, reviews[split], 1024):
            for name in FEATURES:
                packed[name].append(np.asarray(x[name]))
        for name in FEATURES:
            data[f"{split}_{name}"] = np.concatenate(packed[name])
        data[f"{split}_labels"] = np.asarray(reviews[split]["labels"], "int32")
    partial = args.data + ".partial.npz"
    np.savez_compressed(partial, **data)
    os.replace(partial, args.data)
    print(
        f"{len(data['pretrain_token_ids']):,} pre-training examples, "
        + ", ".join(f"{len(data[f'{s}_labels']):,} {s}" for s in SPLITS)
        + f" reviews: {args.data} ({os.path.getsize(args.data) / 1e6:.1f} MB)"
    )


# === run: the model, the pre-training and fine-tuning workers ===


def load_data(path):
    with np.load(path) as file:
        return {name: file[name] for name in file.files}


def backbone_config(data):
    """The demo's encoder (the `electra_demo` preset) for this vocabulary."""
    config = dict(keras_electra.presets[DEMO_PRESET]["backbone"])
    config["vocab_size"] = len(data["vocabulary"])
    config["max_sequence_length"] = data["pretrain_token_ids"].shape[1]
    return config


def special_ids(data):
    vocabulary = list(data["vocabulary"])
    return {
        f"{name}_token_id": vocabulary.index(f"[{name.upper()}]")
        for name in ("pad", "cls", "sep", "mask")
    }


def build_pretrainer(data, objective, temperature):
    keras.utils.set_random_seed(0)
    options = {"objective": objective, "seed": 0, **special_ids(data)}
    if objective != "mlm":
        options["temperature"] = temperature
    return keras_electra.ElectraPretrainer(
        keras_electra.ElectraBackbone(**backbone_config(data)),
        generator_size=keras_electra.presets[DEMO_PRESET]["pretrainer"][
            "generator_size"
        ],
        **options,
    )


def compile_pretrainer(pretrainer, total_steps, steps_per_execution):
    pretrainer.compile(
        optimizer=pretraining_optimizer(
            DEMO_PRETRAINING["learning_rate"], total_steps=total_steps
        ),
        steps_per_execution=steps_per_execution,
    )


def pretraining_inputs(data, examples):
    """The first `examples` examples (a whole number of executions, so that
    every epoch ends on one and no batch is short)."""
    return {
        name: data[f"pretrain_{name}"][:examples].astype("int32")
        for name in FEATURES
    }


class Snapshots(keras.callbacks.Callback):
    """Saves the encoder once it reaches each of `steps`; stops after the
    last of them, or at `deadline` (with a snapshot where it stopped)."""

    def __init__(self, folder, steps, deadline, steps_per_epoch):
        super().__init__()
        self.folder, self.steps, self.deadline = folder, sorted(steps), deadline
        self.steps_per_epoch = steps_per_epoch
        self.first_step = self.epoch = 0
        self.last_logs = {}

    def save(self, step):
        path = os.path.join(self.folder, f"step-{step:07d}.weights.h5")
        partial = path.replace(".weights.h5", ".partial.weights.h5")
        self.model.backbone.save_weights(partial)
        os.replace(partial, path)

    def on_train_begin(self, logs=None):
        self.first_step = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the epoch's last step run (Keras calls this once per
        # execution): counted on the host, no wait for the device.
        step = self.first_step + self.epoch * self.steps_per_epoch + batch + 1
        if self.steps and step >= self.steps[0]:
            self.steps = [s for s in self.steps if s > step]
            self.save(step)
            self.model.stop_training = not self.steps
        elif time.time() > self.deadline:
            self.save(step)
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.last_logs = {k: float(v) for k, v in (logs or {}).items()}


def pretrain_worker(args):
    data = load_data(args.data)
    folder = os.path.join(args.output, args.objective)
    os.makedirs(folder, exist_ok=True)
    batch_size = DEMO_PRETRAINING["batch_size"]
    spe = args.steps_per_execution
    executions = len(data["pretrain_token_ids"]) // (batch_size * spe)
    inputs = pretraining_inputs(data, executions * batch_size * spe)

    timing = {"objective": args.objective}
    if args.steps:
        total_steps = args.steps // spe * spe
    else:  # Time the step on a throw-away copy, then fit the budget to it.
        probe = build_pretrainer(data, args.objective, args.temperature)
        compile_pretrainer(probe, 10_000, spe)
        clock = StepClock()
        start = time.perf_counter()
        probe_examples = 30 * spe * batch_size
        probe.fit(
            {
                name: np.resize(values, (probe_examples, values.shape[1]))
                for name, values in inputs.items()
            },
            batch_size=batch_size,
            callbacks=[clock],
            verbose=0,
        )
        seconds_per_step = (clock.times[-1] - clock.times[9]) / (20 * spe)
        total_steps = int(args.minutes * 60 / seconds_per_step) // spe * spe
        del probe
        timing.update(
            seconds_per_step=seconds_per_step,
            tokens_per_second=batch_size
            * inputs["token_ids"].shape[1]
            / seconds_per_step,
            first_execution_seconds=clock.times[0] - start,
        )
    fractions = [3.0**-k for k in reversed(range(args.snapshots))]
    snapshot_steps = sorted(
        {max(spe, round(total_steps * f / spe) * spe) for f in fractions}
    )
    timing.update(total_steps=total_steps, snapshot_steps=snapshot_steps)
    write_json(os.path.join(folder, "timing.json"), timing)
    print(f"[{args.objective}] {timing}", flush=True)

    pretrainer = build_pretrainer(data, args.objective, args.temperature)
    compile_pretrainer(pretrainer, total_steps, spe)
    snapshots = Snapshots(
        folder, snapshot_steps, args.deadline, steps_per_epoch=executions * spe
    )
    start = time.time()
    pretrainer.fit(
        inputs,
        batch_size=batch_size,
        epochs=math.ceil(total_steps / (executions * spe)),
        callbacks=[snapshots],
        verbose=0,
    )
    steps = int(pretrainer.optimizer.iterations.numpy())
    seconds = time.time() - start
    write_json(
        os.path.join(folder, "done.json"),
        {
            **timing,
            "steps_run": steps,
            "seconds": seconds,
            "steps_per_second_in_run": steps / seconds,
            "final_logs": snapshots.last_logs,
        },
    )
    print(f"[{args.objective}] {steps} steps in {seconds:.0f} s", flush=True)


def finetune(data, weights, seed, steps_per_execution):
    """The demo's fine-tuning (`recipes/demo.py`), on the packed arrays."""
    settings = DEMO_FINETUNING
    keras.utils.set_random_seed(seed)
    backbone = keras_electra.ElectraBackbone(**backbone_config(data))
    if weights:
        backbone.load_weights(weights)
    classifier = keras_electra.ElectraTextClassifier(
        backbone, num_classes=2, pooling=settings["pooling"], preprocessor=None
    )
    batch_size = keras_electra.FINETUNING_HYPERPARAMETERS["batch_size"]
    train = {name: data[f"train_{name}"] for name in FEATURES}
    labels = data["train_labels"]
    total_steps = settings["epochs"] * math.ceil(len(labels) / batch_size)
    classifier.compile(
        optimizer=keras_electra.electra_finetuning_optimizer(
            classifier,
            learning_rate=settings["learning_rate"],
            total_steps=total_steps,
            layer_decay=settings["layer_decay"],
        ),
        steps_per_execution=steps_per_execution,
    )
    # keras-hub's `fit` and `predict` batch in-memory inputs with tf.data or
    # grain; these arrays are packed already, so Keras' own take them.
    keras.Model.fit(
        classifier, train, labels, batch_size=batch_size,
        epochs=settings["epochs"], shuffle=True, verbose=0,
    )
    scores = {}
    for split in ("dev", "test"):
        x = {name: data[f"{split}_{name}"] for name in FEATURES}
        logits = keras.Model.predict(classifier, x, batch_size=256, verbose=0)
        scores[split] = float(np.mean(logits.argmax(-1) == data[f"{split}_labels"]))
    return scores


def finetune_jobs(output, objectives, seeds, baseline=True):
    """The jobs whose encoder exists, in order: scratch, then by step."""
    jobs = [("scratch", 0, seed, None) for seed in range(seeds) if baseline]
    snapshots = []
    for objective in objectives:
        folder = os.path.join(output, objective)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith("step-") and ".partial." not in name:
                step = int(name[len("step-"):].split(".")[0])
                snapshots.append((step, objective, os.path.join(folder, name)))
    for step, objective, path in sorted(snapshots):
        jobs += [(objective, step, seed, path) for seed in range(seeds)]
    return jobs


def claim(output, job):
    """True for the one worker that creates the job's claim file."""
    objective, step, seed, _ = job
    path = os.path.join(output, "claims", f"{objective}-{step}-{seed}")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def pretraining_finished(output, objectives):
    return all(
        os.path.exists(os.path.join(output, objective, "done.json"))
        for objective in objectives
    )


def finetune_worker(args):
    data = load_data(args.data)
    objectives = args.objectives.split(",")
    while time.time() < args.deadline:
        finished = pretraining_finished(args.output, objectives)
        jobs = finetune_jobs(
            args.output, objectives, args.seeds, not args.skip_baseline
        )
        for job in jobs:
            if claim(args.output, job):
                break
        else:
            if finished:
                return
            time.sleep(2)
            continue
        objective, step, seed, weights = job
        start = time.time()
        scores = finetune(data, weights, seed, args.steps_per_execution)
        record = {
            "objective": objective,
            "step": step,
            "seed": seed,
            **scores,
            "seconds": round(time.time() - start, 1),
        }
        with open(os.path.join(args.output, "finetuning.jsonl"), "a") as file:
            file.write(json.dumps(record) + "\n")
        print(f"[finetune] {record}", flush=True)


def run(args):
    objectives = args.objectives.split(",")
    os.makedirs(os.path.join(args.output, "claims"), exist_ok=True)
    start = time.time()
    # Pre-training ends by `minutes` (plus compiling and timing), the
    # fine-tuning of its last snapshots soon after.
    pretrain_deadline = start + args.minutes * 60 * 1.2 + 45
    common = [
        "--data", args.data,
        "--output", args.output,
        "--steps-per-execution", str(args.steps_per_execution),
    ]
    processes = []

    def launch(*argv):
        command = [sys.executable, os.path.abspath(__file__), *argv, *common]
        processes.append(subprocess.Popen(command))

    for index, objective in enumerate(objectives):
        launch(
            "pretrain-worker",
            "--objective", objective,
            "--minutes", str(args.minutes),
            "--snapshots", str(args.snapshots),
            "--temperature", str(args.temperature),
            *(["--steps", str(args.steps)] if args.steps else []),
            "--deadline", str(pretrain_deadline),
        )
        if index == 0:  # the first objective times its step alone
            timing = os.path.join(args.output, objective, "timing.json")
            while not os.path.exists(timing):
                if processes[0].poll() is not None:
                    raise RuntimeError(f"pre-training {objective} failed")
                time.sleep(1)
    for _ in range(args.workers):
        launch(
            "finetune-worker",
            "--objectives", args.objectives,
            "--seeds", str(args.seeds),
            *(["--skip-baseline"] if args.skip_baseline else []),
            "--deadline", str(pretrain_deadline + 75),
        )
    failed = [p.args[2:4] for p in processes if p.wait() != 0]
    results = summarise(args, objectives, time.time() - start)
    if failed:
        print(f"Failed processes: {failed}")
    return results


def summarise(args, objectives, seconds):
    runs = []
    path = os.path.join(args.output, "finetuning.jsonl")
    if os.path.exists(path):
        with open(path) as file:
            runs = [json.loads(line) for line in file]
    groups = {}
    for record in runs:
        groups.setdefault((record["objective"], record["step"]), []).append(record)
    rows = []
    for (objective, step), members in sorted(
        groups.items(), key=lambda item: (item[0][0] != "scratch", item[0])
    ):
        row = {"objective": objective, "step": step, "seeds": len(members)}
        for split in ("test", "dev"):
            values = [m[split] for m in members]
            row[split] = statistics.mean(values)
            row[f"{split}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    pretraining = {}
    for objective in objectives:
        for name in ("done.json", "timing.json"):
            file_path = os.path.join(args.output, objective, name)
            if os.path.exists(file_path):
                with open(file_path) as file:
                    pretraining[objective] = json.load(file)
                break
    print(markdown_table(rows, pretraining))
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "backend": keras.config.backend(),
        "minutes": args.minutes,
        "temperature": args.temperature,
        "seconds": round(seconds),
        "model": backbone_config(load_data(args.data)),
        "pretraining": pretraining,
        "rows": rows,
        "runs": runs,
    }
    write_json(os.path.join(args.output, "pretraining_budget.json"), results)
    return results


def markdown_table(rows, pretraining):
    lines = [
        "| encoder | pre-training steps | test accuracy | dev accuracy | seeds |",
        "|---|---:|---|---|---:|",
    ]
    for row in rows:
        name = "random initialisation" if row["objective"] == "scratch" else row["objective"]
        lines.append(
            f"| {name} | {row['step']:,} | {100 * row['test']:.1f} ± "
            f"{100 * row['test_std']:.1f} | {100 * row['dev']:.1f} ± "
            f"{100 * row['dev_std']:.1f} | {row['seeds']} |"
        )
    for objective, info in pretraining.items():
        timed = (
            f"{1 / info['seconds_per_step']:.0f} steps/s "
            f"({info['tokens_per_second']:,.0f} tokens/s) timed at the start; "
            if "seconds_per_step" in info
            else ""
        )
        ran = (
            f"{info['steps_run']:,} steps in {info['seconds']:.0f} s"
            if "steps_run" in info
            else "did not finish"
        )
        lines.append(f"\n{objective}: {timed}{ran}")
    return "\n".join(lines)


def machine():
    backend = keras.config.backend()
    devices = []
    if backend == "jax":
        import jax

        devices = [d.device_kind for d in jax.devices()]
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            devices = [torch.cuda.get_device_name(0)]
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "devices": devices,
    }


def default_steps_per_execution():
    return 1 if keras.config.backend() == "torch" else 10


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        return args
    for name in ("minutes", "steps", "snapshots", "seeds", "workers",
                 "steps_per_execution"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    unknown = set(args.objectives.split(",")) - set(OBJECTIVES)
    if unknown:
        parser.error(
            f"unknown --objectives {sorted(unknown)}; choose from "
            f"{', '.join(OBJECTIVES)}"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    if getattr(args, "steps_per_execution", 0) is None:
        args.steps_per_execution = default_steps_per_execution()
    if args.command == "prepare":
        return prepare(args)
    if args.command == "pretrain-worker":
        return pretrain_worker(args)
    if args.command == "finetune-worker":
        return finetune_worker(args)
    return run(args)


if __name__ == "__main__":
    main()
