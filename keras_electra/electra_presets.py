"""Built-in ELECTRA architectures and the preset resolution shared by all
keras_electra model classes.

Built-in presets are configurations only (random initialisation); the sizes
are those of the ELECTRA paper (Clark et al., 2020, Table 6).
"""

import contextlib
import inspect
import os
import shutil
import uuid

import keras_hub
from keras_hub.src.utils import preset_utils

PRESETS = {
    "electra_tiny": {
        "description": "A 2-layer, 32-wide ELECTRA for tests and demos.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 32,
            "embedding_dim": 16,
            "intermediate_dim": 64,
            "max_sequence_length": 128,
        },
        "pretrainer": {"generator_size": 0.5, "mask_rate": 0.15},
    },
    "electra_small": {
        "description": "ELECTRA-Small: 12 layers, 256 hidden, 4 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 12,
            "num_heads": 4,
            "hidden_dim": 256,
            "embedding_dim": 128,
            "intermediate_dim": 1024,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 0.25, "mask_rate": 0.15},
    },
    "electra_base": {
        "description": "ELECTRA-Base: 12 layers, 768 hidden, 12 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 12,
            "num_heads": 12,
            "hidden_dim": 768,
            "embedding_dim": 768,
            "intermediate_dim": 3072,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 1 / 3, "mask_rate": 0.15},
    },
    "electra_large": {
        "description": "ELECTRA-Large: 24 layers, 1024 hidden, 16 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 24,
            "num_heads": 16,
            "hidden_dim": 1024,
            "embedding_dim": 1024,
            "intermediate_dim": 4096,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 0.25, "mask_rate": 0.25},
    },
}


def check_preset(preset):
    """Raise a `ValueError` naming the choices if `preset` cannot exist."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(f"`preset` must be a string or path, got {preset!r}.")
    preset = str(preset)
    if (
        preset in PRESETS
        or preset in keras_hub.models.ElectraBackbone.presets
        or "://" in preset
    ):
        return
    if not os.path.isdir(preset):
        raise ValueError(
            f"Preset '{preset}' is neither a known preset nor an existing "
            f"directory. Built-in presets: {sorted(PRESETS)}; keras-hub "
            f"ELECTRA presets: "
            f"{sorted(keras_hub.models.ElectraBackbone.presets)}; or pass a "
            "local preset or `transformers` checkpoint directory, or a "
            "'kaggle://' / 'hf://' handle."
        )
    if not os.path.exists(os.path.join(preset, preset_utils.CONFIG_FILE)):
        raise ValueError(
            f"Preset directory '{preset}' has no "
            f"{preset_utils.CONFIG_FILE}; it is not a saved preset or a "
            "`transformers` checkpoint."
        )


def max_sequence_length(preset):
    """The backbone's `max_sequence_length` in `preset`'s config, or `None`.

    Reads `config.json` only (a saved preset's or a `transformers`
    checkpoint's); `None` where it cannot tell.
    """
    if preset in PRESETS:
        return PRESETS[preset]["backbone"]["max_sequence_length"]
    try:
        config = preset_utils.load_json(preset, preset_utils.CONFIG_FILE)
    except Exception:
        return None
    if not isinstance(config, dict):
        return None
    saved = config.get("config")
    if isinstance(saved, dict) and "max_sequence_length" in saved:
        return saved["max_sequence_length"]
    return config.get("max_position_embeddings")


def split_backbone_kwargs(backbone_cls, kwargs):
    """Split `kwargs` into backbone config overrides and the rest."""
    names = set(inspect.signature(backbone_cls.__init__).parameters) - {
        "self",
        "kwargs",
        "embedding_owner",
    }
    backbone_kwargs = {k: v for k, v in kwargs.items() if k in names}
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return backbone_kwargs, rest


def load_backbone(cls, preset, load_weights, overrides):
    """`cls.from_preset(preset, load_weights, **overrides)` for a backbone."""
    check_preset(preset)
    if preset in PRESETS:
        return cls(**{**PRESETS[preset]["backbone"], **overrides})
    from keras_electra import transformers_conversion

    if transformers_conversion.is_transformers_preset(preset):
        return transformers_conversion.load_backbone(
            cls, preset, load_weights, overrides
        )
    loader = preset_utils.get_preset_loader(preset)
    saved_cls = loader.check_backbone_class()
    if not issubclass(saved_cls, keras_hub.models.ElectraBackbone):
        raise ValueError(
            f"Preset '{preset}' holds a `{saved_cls.__name__}`, not an "
            "ELECTRA backbone."
        )
    config = dict(loader.config["config"])
    # Saved float weights are cast to the current policy, as keras-hub does.
    config["dtype"] = loader._resolve_dtype(loader.config, overrides)
    overrides.pop("dtype", None)
    backbone = cls.from_config({**config, **overrides})
    if load_weights:
        with weights_errors(preset, preset_utils.MODEL_WEIGHTS_FILE):
            loader._load_backbone_weights(backbone)
    return backbone


@contextlib.contextmanager
def weights_errors(preset, filename):
    """h5py's `OSError` on a truncated file, or Keras' `ValueError` on weights
    of other shapes, as a `ValueError` that names the preset and the file."""
    try:
        yield
    except (OSError, ValueError) as error:
        detail = " ".join(str(error).split())
        if len(detail) > 400:
            detail = detail[:400] + "..."
        raise ValueError(
            f"Cannot load {filename} of preset '{preset}': the file is "
            f"truncated or corrupt, or its weights do not match the shapes "
            f"of the preset's {preset_utils.CONFIG_FILE} "
            f"({type(error).__name__}: {detail})"
        ) from error


def load_task(cls, preset, load_weights, kwargs):
    """`cls.from_preset(preset, load_weights, **kwargs)` for a task model.

    Backbone config overrides in `kwargs` go to the backbone, the rest to the
    task. A preset that holds a saved task of class `cls` also restores the
    task's own weights (its head); otherwise the head starts fresh. A
    `transformers` checkpoint restores the head it holds.
    """
    from keras_electra import transformers_conversion

    if transformers_conversion.is_transformers_preset(preset):
        return transformers_conversion.load_task(
            cls, preset, load_weights, kwargs
        )
    backbone_kwargs, task_kwargs = split_backbone_kwargs(
        cls.backbone_cls, kwargs
    )
    backbone = cls.backbone_cls.from_preset(
        preset, load_weights, **backbone_kwargs
    )
    saved_task = preset not in PRESETS and preset_utils.check_file_exists(
        preset, preset_utils.TASK_CONFIG_FILE
    )
    if saved_task:
        task_config = preset_utils.load_json(
            preset, preset_utils.TASK_CONFIG_FILE
        )
        saved_task = issubclass(
            preset_utils.check_config_class(task_config), cls
        )
    if not saved_task:
        return cls(backbone=backbone, **task_kwargs)
    config = {
        key: value
        for key, value in task_config["config"].items()
        if key not in ("backbone", "preprocessor")
    }
    # Compile only after loading: a fresh optimizer does not match the
    # (empty) optimizer state in the saved task weights.
    compile = task_kwargs.pop("compile", True)
    task = cls(backbone=backbone, **{**config, **task_kwargs}, compile=False)
    if load_weights and preset_utils.check_file_exists(
        preset, preset_utils.TASK_WEIGHTS_FILE
    ):
        with weights_errors(preset, preset_utils.TASK_WEIGHTS_FILE):
            task.load_task_weights(
                preset_utils.get_file(preset, preset_utils.TASK_WEIGHTS_FILE)
            )
    if compile:
        task.compile()
    return task


class SavesAtomically:
    """Mixin for keras-hub tasks: `save_to_preset` through `save_atomically`,
    so a failure leaves no half-written preset and a previous preset at that
    path intact."""

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save as a preset directory, atomically (see
        `keras_electra.electra_presets.save_atomically`)."""
        save = super().save_to_preset
        save_atomically(
            lambda directory: save(directory, max_shard_size=max_shard_size),
            preset_dir,
        )


def save_atomically(save, preset_dir):
    """Write a preset with `save(directory)`, replacing `preset_dir` only
    once the new preset is complete.

    `save` writes into a temporary directory next to `preset_dir`, which is
    then renamed into place: a failure (disk full, permission denied, ...)
    leaves no half-written preset and a previous preset in `preset_dir`
    intact. `preset_dir` must be new, empty or a preset (with a
    `config.json`), which is replaced as a whole; any other directory is
    refused with a `ValueError` rather than deleted.
    """
    preset_dir = os.path.abspath(os.fspath(preset_dir))
    if os.path.exists(preset_dir):
        if not os.path.isdir(preset_dir):
            raise ValueError(f"'{preset_dir}' exists and is not a directory.")
        if os.listdir(preset_dir) and not os.path.exists(
            os.path.join(preset_dir, preset_utils.CONFIG_FILE)
        ):
            raise ValueError(
                f"'{preset_dir}' is a non-empty directory without "
                f"{preset_utils.CONFIG_FILE}, not a preset: not replacing "
                "it. Save to a new or empty directory."
            )
    parent = os.path.dirname(preset_dir)
    os.makedirs(parent, exist_ok=True)
    # Not `tempfile.mkdtemp`, whose 0o700 the preset would keep: the usual
    # permissions (umask), and a fresh name.
    while True:
        staging = os.path.join(parent, f".electra-preset-{uuid.uuid4().hex}")
        try:
            os.mkdir(staging)
            break
        except FileExistsError:
            continue
    try:
        save(staging)
        _replace_directory(staging, preset_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_directory(source, target):
    """Rename `source` to `target`; an old `target` is removed only after."""
    if not os.path.exists(target):
        os.rename(source, target)
        return
    backup = os.path.join(
        os.path.dirname(target), f".electra-old-{uuid.uuid4().hex}"
    )
    os.rename(target, backup)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(backup, target)  # Put the previous preset back.
        raise
    shutil.rmtree(backup, ignore_errors=True)
