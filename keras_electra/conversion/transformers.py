"""`transformers` ELECTRA checkpoints into keras_electra models (conversion
in). `keras_electra.utils.preset_loading` dispatches every `from_preset` of
a `transformers` folder or `hf://` handle here; see `transformers_format`
for the mapping."""

import inspect
import math
import warnings

import numpy as np

from keras_electra.conversion.transformers_format import EMBEDDING_TOLERANCE
from keras_electra.conversion.transformers_format import (
    backbone_config_from_transformers,
)
from keras_electra.conversion.transformers_format import backbone_entries
from keras_electra.conversion.transformers_format import discriminator_head_entries
from keras_electra.conversion.transformers_format import embedding_entries
from keras_electra.conversion.transformers_format import load_config
from keras_electra.conversion.transformers_format import numpy
from keras_electra.conversion.transformers_format import source
from keras_electra.conversion.transformers_format import task_head
from keras_electra.conversion.transformers_reader import TransformersCheckpoint
from keras_electra.conversion.transformers_reader import check_present
from keras_electra.conversion.transformers_reader import load_entries
from keras_electra.conversion.transformers_reader import load_generator_head
from keras_electra.conversion.transformers_reader import load_optional_head
from keras_electra.conversion.transformers_reader import read_checked
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_generator import ElectraGenerator
from keras_electra.models.electra_tokenizer import ElectraTokenizer
from keras_electra.models.electra_tokenizer import has_tokenizer
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.utils.preset_loading import is_transformers_preset  # noqa: F401
from keras_electra.utils.preset_loading import split_backbone_kwargs

# === Loading ===


def _build_backbone(cls, preset, overrides):
    config = backbone_config_from_transformers(
        load_config(preset), source(preset)
    )
    return cls(**{**config, **overrides})


def load_backbone(cls, preset, load_weights, overrides):
    """`cls.from_preset(preset, ...)` for a `transformers` checkpoint."""
    preset = str(preset)
    backbone = _build_backbone(cls, preset, overrides)
    if load_weights:
        with TransformersCheckpoint(preset) as checkpoint:
            load_entries(checkpoint, backbone_entries(backbone), "encoder")
    return backbone


def load_task(cls, preset, load_weights, kwargs):
    """`ElectraDiscriminator` / `ElectraGenerator` `.from_preset(preset)`.

    The encoder comes from the checkpoint, and so does the head where the
    checkpoint has one (`ElectraForPreTraining` for the discriminator,
    `ElectraForMaskedLM` for the generator); otherwise the head starts
    fresh, with a warning.
    """
    preset = str(preset)
    backbone_kwargs, task_kwargs = split_backbone_kwargs(
        cls.backbone_cls, kwargs
    )
    backbone = _build_backbone(cls.backbone_cls, preset, backbone_kwargs)
    if "num_classes" in inspect.signature(cls.__init__).parameters:
        task_kwargs.setdefault("num_classes", _num_labels(preset))
    task = cls(backbone=backbone, **task_kwargs)
    if load_weights:
        with TransformersCheckpoint(preset) as checkpoint:
            load_entries(checkpoint, backbone_entries(backbone), "encoder")
            head = task_head(task)
            if head is not None:
                architecture, entries, what = head
                load_optional_head(
                    checkpoint, entries(task), what, architecture
                )
            elif isinstance(task, ElectraGenerator):
                load_generator_head(task, checkpoint)
    return task


def _num_labels(preset):
    config = load_config(preset)
    if "id2label" in config:
        return len(config["id2label"])
    if "num_labels" in config:
        return int(config["num_labels"])
    raise ValueError(
        f"{source(preset)} does not say how many labels it has; pass "
        "`num_classes`."
    )


def _generator_size(discriminator, generator, generator_source):
    """The `generator_size` at which `ElectraPretrainer` holds `generator`."""
    for key in (
        "vocab_size",
        "embedding_dim",
        "max_sequence_length",
        "num_segments",
        "num_layers",
        "approximate_gelu",
    ):
        if discriminator[key] != generator[key]:
            raise ValueError(
                f"{generator_source} has `{key}={generator[key]}` where the "
                f"discriminator has `{discriminator[key]}`; "
                "ElectraPretrainer's generator must match the discriminator "
                "in all but width."
            )
    generator_size = generator["hidden_dim"] / discriminator["hidden_dim"]
    expected = ElectraBackbone.generator_config(discriminator, generator_size)
    for key in ("hidden_dim", "num_heads", "intermediate_dim"):
        if expected[key] != generator[key]:
            raise ValueError(
                f"{generator_source} has `{key}={generator[key]}`; at "
                f"`generator_size={generator_size:g}` (hidden "
                f"{generator['hidden_dim']} / {discriminator['hidden_dim']}) "
                f"ElectraPretrainer builds a generator with `{key}="
                f"{expected[key]}` (one head per 64 units, feed-forward 4x "
                "hidden), so it cannot hold this generator."
            )
    return generator_size


def load_pretrainer(cls, discriminator, generator, load_weights, kwargs):
    """An `ElectraPretrainer` from `transformers` checkpoints.

    `discriminator` gives the discriminator (and the shared embeddings);
    `generator`, if not `None`, the generator, whose size it fixes.
    """
    discriminator = str(discriminator)
    backbone_kwargs, kwargs = split_backbone_kwargs(ElectraBackbone, kwargs)
    if generator is not None:
        generator = str(generator)
        generator_size = _generator_size(
            backbone_config_from_transformers(
                load_config(discriminator), source(discriminator)
            ),
            backbone_config_from_transformers(
                load_config(generator), source(generator)
            ),
            source(generator),
        )
        if "generator_size" in kwargs and not math.isclose(
            kwargs["generator_size"], generator_size
        ):
            raise ValueError(
                f"`generator_size={kwargs['generator_size']}` disagrees with "
                f"the generator checkpoint, which has generator_size "
                f"{generator_size:g}."
            )
        kwargs["generator_size"] = generator_size
    backbone = _build_backbone(ElectraBackbone, discriminator, backbone_kwargs)
    special_ids = ("pad_token_id", "cls_token_id", "sep_token_id")
    if (
        "tokenizer" not in kwargs
        and not any(name in kwargs for name in special_ids + ("mask_token_id",))
        and has_tokenizer(discriminator)
    ):
        # The checkpoint's vocabulary fixes the special token ids.
        kwargs["tokenizer"] = ElectraTokenizer.from_preset(discriminator)
    if not load_weights:
        return cls(backbone, **kwargs)
    with TransformersCheckpoint(discriminator) as checkpoint:
        # Before the pretrainer is built: with "gdes" it builds its encoder
        # anew from `backbone`'s weights.
        load_entries(checkpoint, backbone_entries(backbone), "encoder")
        pretrainer = cls(backbone, **kwargs)
        load_optional_head(
            checkpoint,
            discriminator_head_entries(pretrainer.discriminator),
            "replaced-token-detection head",
            "ElectraForPreTraining",
        )
    if generator is None:
        return pretrainer
    generator_backbone = pretrainer.generator.backbone
    sharing = pretrainer.embedding_sharing
    entries = backbone_entries(
        generator_backbone, include_embeddings=sharing == "separate"
    )
    # What stays tied and must agree: the whole embedding block, or with
    # "gdes" all of it but the token table, which the generator then owns
    # (`shared`) and `delta` makes up to the discriminator's.
    tied_entries = embedding_entries(backbone) if sharing != "separate" else []
    if sharing == "gdes":
        entries += embedding_entries(generator_backbone)[:1]
        tied_entries = tied_entries[1:]
        discriminator_table = numpy(backbone.token_embedding.embeddings)
    with TransformersCheckpoint(generator) as checkpoint:
        load_entries(checkpoint, entries, "encoder")
        load_generator_head(pretrainer.generator, checkpoint)
        if tied_entries:
            _compare_embeddings(checkpoint, tied_entries, discriminator)
    if sharing == "gdes":
        pretrainer.backbone.token_embedding.assign_folded(discriminator_table)
    return pretrainer


def _compare_embeddings(checkpoint, entries, discriminator):
    check_present(checkpoint, entries, "embedding")
    differences = []
    for name, variable, layout in entries:
        theirs = read_checked(checkpoint, name, variable, layout)
        ours = numpy(variable)
        difference = float(np.max(np.abs(theirs.astype("float32") - ours)))
        if difference > EMBEDDING_TOLERANCE:
            differences.append(f"'{checkpoint.key(name)}' by {difference:.3g}")
    if differences:
        warnings.warn(
            "The generator's embeddings differ from the discriminator's "
            f"('{discriminator}'): {', '.join(differences)}. The pretrainer "
            "shares the discriminator's embeddings with the generator; pass "
            "`embedding_sharing=\"separate\"` to keep the generator's own "
            "(or `\"gdes\"` to keep both tables).",
            stacklevel=4,
        )


def pretrainer_from_transformers(discriminator, generator, **kwargs):
    """An `ElectraPretrainer` from a `transformers` discriminator + generator.

    Joins a released pair such as Google's `electra-small-discriminator` and
    `electra-small-generator` to continue pre-training. The generator's size
    follows from the two widths (`generator_size = generator hidden /
    discriminator hidden`); its heads and feed-forward width must follow
    ELECTRA's rule (one head per 64 units, feed-forward 4x hidden) and its
    other dimensions must match the discriminator's, or a `ValueError` says
    which does not.

    With `embedding_sharing="tied"` (the default) both towers use the
    discriminator's embeddings; a warning says if the generator checkpoint's
    embeddings differ from them (in released pairs they are identical).
    With `"gdes"` the generator's token table is `shared` and `delta` their
    difference, so each tower keeps its own table; with `"separate"` the
    generator keeps its embeddings.

    Args:
        discriminator: local directory or `hf://owner/name` handle of an
            `ElectraForPreTraining` (or `ElectraModel`) checkpoint.
        generator: the same for an `ElectraForMaskedLM` checkpoint.
        **kwargs: `ElectraPretrainer` arguments (e.g. `mask_rate`,
            `tokenizer`, `seed`) and backbone overrides (e.g. `dtype`).

    Example:
    ```python
    import os
    import tempfile
    import keras_electra

    # Exact GELU, as `transformers`' masked-LM head applies whatever the
    # config says (the presets' tanh form would load with a warning).
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=500, approximate_gelu=False
    )
    directory = tempfile.mkdtemp()
    discriminator_dir = os.path.join(directory, "discriminator")
    generator_dir = os.path.join(directory, "generator")
    for tower, path in [("discriminator", discriminator_dir),
                        ("generator", generator_dir)]:
        keras_electra.export_to_transformers(
            getattr(pretrainer, tower), path, tokenizer=pretrainer.tokenizer
        )
    restored = keras_electra.pretrainer_from_transformers(
        discriminator_dir, generator_dir, mask_rate=0.2
    )
    restored.generator_size  # 0.5
    ```
    """
    return load_pretrainer(
        ElectraPretrainer, discriminator, generator, True, kwargs
    )
