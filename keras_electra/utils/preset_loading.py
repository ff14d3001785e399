"""Presets in and out: built-in names, keras-hub presets and handles, local
folders, and `transformers` checkpoints.

Every `from_preset` of keras_electra goes through here. The built-in presets
(configurations) come from the class asked for (`builtin_presets`), so this
module imports no model. `transformers_converter` is the one place that
imports the converter lazily (the converter imports the models), as
keras-hub's `get_preset_loader` does.
"""

import contextlib
import inspect
import os
import shutil
import warnings

import keras_hub

from keras_electra.utils.keras_compat import preset_utils
from keras_electra.utils.file_io import replace_directory
from keras_electra.utils.file_io import staging_directory

# The layout `ElectraPretrainer.save_to_preset` writes: the discriminator and
# the tokenizer at the root, the pre-training settings in this file and the
# generator (without a tokenizer) in this subfolder. The pretrainer names them
# too; the models read them from here, as they may not import `pretraining`.
PRETRAINER_CONFIG_FILE = "pretrainer.json"
GENERATOR_DIR = "generator"


def pretrainer_generator_preset(preset):
    """The generator's folder of a pretrainer preset, or `None`.

    `preset/generator` if `preset` is a local directory written by
    `ElectraPretrainer.save_to_preset` with a generator, else `None`.

    Example:
    ```python
    from keras_electra.utils import preset_loading

    preset_loading.pretrainer_generator_preset("electra_small")  # None
    ```
    """
    if not isinstance(preset, (str, os.PathLike)):
        return None
    preset = os.fspath(preset)
    generator = os.path.join(preset, GENERATOR_DIR)
    if os.path.isfile(
        os.path.join(preset, PRETRAINER_CONFIG_FILE)
    ) and os.path.isfile(os.path.join(generator, preset_utils.CONFIG_FILE)):
        return generator
    return None


def is_transformers_preset(preset):
    """Whether `preset` is a `transformers` checkpoint (any model type)."""
    if not isinstance(preset, (str, os.PathLike)):
        return False
    preset = os.fspath(preset)
    if preset in keras_hub.models.ElectraBackbone.presets:
        return False
    if "://" not in preset and not os.path.isdir(preset):
        return False
    try:
        config = preset_utils.load_json(preset, preset_utils.CONFIG_FILE)
    except (FileNotFoundError, ValueError):
        # Not a preset at all: the regular preset checks say why.
        return False
    return "model_type" in config and "registered_name" not in config


def transformers_converter(preset):
    """The `transformers` converter module if `preset` is a `transformers`
    checkpoint, else `None`."""
    if not is_transformers_preset(preset):
        return None
    from keras_electra.conversion import transformers  # the one lazy import

    return transformers


def check_preset(preset, builtin_presets):
    """Raise a `ValueError` naming the choices if `preset` cannot exist."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(f"`preset` must be a string or path, got {preset!r}.")
    preset = str(preset)
    if (
        preset in builtin_presets
        or preset in keras_hub.models.ElectraBackbone.presets
        or "://" in preset
    ):
        return
    if not os.path.isdir(preset):
        raise ValueError(
            f"Preset '{preset}' is neither a known preset nor an existing "
            f"directory. Built-in presets: {sorted(builtin_presets)}; keras-hub "
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


def max_sequence_length(preset, builtin_presets):
    """The backbone's `max_sequence_length` in `preset`'s config, or `None`.

    Reads `config.json` only (a saved preset's or a `transformers`
    checkpoint's); `None` where it cannot tell.
    """
    if preset in builtin_presets:
        return builtin_presets[preset]["backbone"]["max_sequence_length"]
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
        # Not config: how a pretrainer's towers share embeddings (and
        # `embedding_sharing` is also an `ElectraPretrainer` argument).
        "embedding_owner",
        "embedding_sharing",
    }
    backbone_kwargs = {k: v for k, v in kwargs.items() if k in names}
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return backbone_kwargs, rest


def load_backbone(cls, preset, load_weights, overrides):
    """`cls.from_preset(preset, load_weights, **overrides)` for a backbone."""
    check_preset(preset, cls.builtin_presets)
    if preset in cls.builtin_presets:
        return cls(**{**cls.builtin_presets[preset]["backbone"], **overrides})
    converter = transformers_converter(preset)
    if converter is not None:
        return converter.load_backbone(cls, preset, load_weights, overrides)
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
    of other shapes, as a `ValueError` that names the preset and the file.

    Warnings raised while loading are held back and shown only if the load
    succeeds: on weights of other shapes, Keras warns about each container it
    could not fill ("Skipping nested container") before it fails, and those
    warnings only repeat the error, less clearly.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
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
    for warning in caught:
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno
        )


def load_task(cls, preset, load_weights, kwargs):
    """`cls.from_preset(preset, load_weights, **kwargs)` for a task model.

    Backbone config overrides in `kwargs` go to the backbone, the rest to the
    task. A preset that holds a saved task of class `cls` also restores the
    task's own weights (its head); otherwise the head starts fresh. A
    `transformers` checkpoint restores the head it holds.
    """
    converter = transformers_converter(preset)
    if converter is not None:
        return converter.load_task(cls, preset, load_weights, kwargs)
    backbone_kwargs, task_kwargs = split_backbone_kwargs(
        cls.backbone_cls, kwargs
    )
    backbone = cls.backbone_cls.from_preset(
        preset, load_weights, **backbone_kwargs
    )
    saved_task = (
        preset not in cls.backbone_cls.builtin_presets
    ) and preset_utils.check_file_exists(
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
        `keras_electra.utils.preset_loading.save_atomically`)."""
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
    staging = staging_directory(
        os.path.dirname(preset_dir), ".electra-preset-"
    )
    try:
        save(staging)
        replace_directory(staging, preset_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
