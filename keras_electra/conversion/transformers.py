"""Hugging Face `transformers` ELECTRA checkpoints in and out of keras_electra.

Loading goes through the ordinary entry points: `ElectraBackbone.from_preset`,
`ElectraDiscriminator.from_preset`, `ElectraGenerator.from_preset` and
`ElectraPretrainer.from_preset` accept a directory written by
`transformers`' `save_pretrained` (a `config.json` with
`"model_type": "electra"` and `model.safetensors`, a sharded
`model.safetensors.index.json` or `pytorch_model.bin`) or an `hf://owner/name`
handle of such a checkpoint. `pretrainer_from_transformers` joins a released
generator and discriminator into an `ElectraPretrainer`, and
`export_to_transformers` writes a model back in the `transformers` format.

Weights are read with `safetensors` (no `torch` needed). A `pytorch_model.bin`
needs `torch` and is read with `torch.load(..., weights_only=True)`, which
refuses pickled code.

Mapping (`transformers` name, with or without the `electra.` prefix ->
keras_electra):

- `embeddings.word_embeddings` / `position_embeddings` /
  `token_type_embeddings` / `LayerNorm` -> `token_embedding`,
  `position_embedding`, `segment_embedding`, `embeddings_layer_norm`;
- `embeddings_project` -> `embeddings_projection`;
- `encoder.layer.{i}.attention.self.{query,key,value}` and
  `attention.output.dense` -> the attention layer of
  `transformer_layer_{i}` (kernels reshaped per head),
  `attention.output.LayerNorm` -> `_self_attention_layer_norm`,
  `intermediate.dense` / `output.dense` / `output.LayerNorm` -> the
  feed-forward dense layers and `_feedforward_layer_norm`;
- `discriminator_predictions.{dense,dense_prediction}` ->
  `replaced_token_head.{dense,prediction}` (`ElectraForPreTraining`);
- `generator_predictions.{dense,LayerNorm}` and `generator_lm_head.bias` ->
  the generator's `mlm_head` (`ElectraForMaskedLM`; the output kernel is the
  token embedding in both).

`transformers`' `ElectraModel` has no pooler: a loaded backbone's
`pooled_dense` keeps its random initialisation, and export leaves it out.
"""

import contextlib
import inspect
import math
import os
import warnings

import keras
import keras_hub
import numpy as np
from keras_electra.utils.keras_compat import preset_utils

from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_discriminator import ElectraDiscriminator
from keras_electra.models.electra_generator import ElectraGenerator
from keras_electra.utils import preset_loading
from keras_electra.utils.preset_loading import is_transformers_preset  # noqa: F401
from keras_electra.utils.preset_loading import split_backbone_kwargs
from keras_electra.utils.file_io import write_json
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.models.electra_question_answerer import ElectraQuestionAnswerer
from keras_electra.models.electra_text_classifier import ElectraTextClassifier
from keras_electra.models.electra_token_classifier import ElectraTokenClassifier
from keras_electra.models.electra_tokenizer import ElectraTokenizer
from keras_electra.models.electra_tokenizer import has_tokenizer

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

# `transformers.ElectraConfig` defaults, for keys a config.json leaves out.
TRANSFORMERS_DEFAULTS = {
    "vocab_size": 30522,
    "embedding_size": 128,
    "hidden_size": 256,
    "num_hidden_layers": 12,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "add_cross_attention": False,
}
EXACT_GELU = ("gelu",)
APPROXIMATE_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
LAYER_NORM_EPSILON = 1e-12
# Released generator/discriminator pairs were trained with tied embeddings,
# so the two checkpoints hold identical copies.
EMBEDDING_TOLERANCE = 1e-5

# How a `transformers` tensor is laid out relative to the Keras variable.
COPY = "copy"  # same layout
LINEAR = "linear"  # torch Linear (out, in) vs Keras Dense (in, out)
HEADS_IN = "heads_in"  # (heads * head_dim, hidden) vs (hidden, heads, head_dim)
HEADS_BIAS = "heads_bias"  # (heads * head_dim,) vs (heads, head_dim)
# (hidden, heads * head_dim) vs (heads, head_dim, hidden):
HEADS_OUT = "heads_out"

BACKBONE_PREFIX = "electra."
EMBEDDING_PREFIX = "embeddings."
DISCRIMINATOR_HEAD_PREFIX = "discriminator_predictions."
GENERATOR_HEAD_PREFIXES = ("generator_predictions.", "generator_lm_head.")


# === Configs ===


def backbone_config_from_transformers(config, source="the config"):
    """`ElectraBackbone` arguments for a `transformers` ELECTRA config dict.

    Raises a `ValueError` for a config of another model type or one that
    uses features `ElectraBackbone` does not have.
    """
    model_type = config.get("model_type")
    if model_type != "electra":
        raise ValueError(
            f"{source} describes a '{model_type}' model, not ELECTRA: "
            "`config.json` must have `\"model_type\": \"electra\"`."
        )
    config = {**TRANSFORMERS_DEFAULTS, **config}
    hidden_act = config["hidden_act"]
    if hidden_act in EXACT_GELU:
        approximate_gelu = False
    elif hidden_act in APPROXIMATE_GELU:
        approximate_gelu = True
    else:
        raise ValueError(
            f"{source} has `hidden_act={hidden_act!r}`; ElectraBackbone "
            f"supports {EXACT_GELU + APPROXIMATE_GELU}."
        )
    epsilon = config["layer_norm_eps"]
    if not math.isclose(epsilon, LAYER_NORM_EPSILON, rel_tol=1e-6):
        raise ValueError(
            f"{source} has `layer_norm_eps={epsilon}`; ElectraBackbone's "
            f"LayerNorms use {LAYER_NORM_EPSILON}."
        )
    position_type = config["position_embedding_type"]
    if position_type != "absolute":
        raise ValueError(
            f"{source} has `position_embedding_type={position_type!r}`; "
            "ElectraBackbone supports only 'absolute' position embeddings."
        )
    for flag in ("is_decoder", "add_cross_attention"):
        if config[flag]:
            raise ValueError(
                f"{source} has `{flag}=True`; ElectraBackbone is an encoder "
                "without causal or cross-attention."
            )
    return {
        "vocab_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "embedding_dim": config["embedding_size"],
        "intermediate_dim": config["intermediate_size"],
        "dropout": config["hidden_dropout_prob"],
        "max_sequence_length": config["max_position_embeddings"],
        "num_segments": config["type_vocab_size"],
        "approximate_gelu": approximate_gelu,
    }


def transformers_config(backbone, architecture, pad_token_id=0):
    """The `transformers` `config.json` dict for `backbone`."""
    approximate_gelu = getattr(backbone, "approximate_gelu", True)
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": backbone.vocab_size,
        "embedding_size": backbone.embedding_dim,
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "hidden_act": "gelu_new" if approximate_gelu else "gelu",
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": backbone.num_segments,
        "initializer_range": 0.02,
        "layer_norm_eps": LAYER_NORM_EPSILON,
        "position_embedding_type": "absolute",
        "pad_token_id": pad_token_id,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def _load_config(preset):
    try:
        return preset_utils.load_json(preset, CONFIG_FILE)
    except FileNotFoundError:
        raise ValueError(
            f"'{preset}' has no {CONFIG_FILE}; it is not a `transformers` "
            "checkpoint."
        ) from None


def _source(preset):
    return f"The `transformers` checkpoint '{preset}'"


# === Weight layouts ===


def _transformers_shape(layout, shape):
    shape = tuple(shape)
    if layout == COPY:
        return shape
    if layout == LINEAR:
        return shape[::-1]
    if layout == HEADS_IN:
        return (shape[1] * shape[2], shape[0])
    if layout == HEADS_BIAS:
        return (shape[0] * shape[1],)
    if layout == HEADS_OUT:
        return (shape[2], shape[0] * shape[1])
    raise ValueError(f"Unknown layout {layout!r}.")


def _to_keras(layout, array, shape):
    if layout == COPY:
        return array
    if layout == LINEAR:
        return array.T
    # (heads * head_dim, ...) -> per-head Keras kernels and biases.
    return array.T.reshape(tuple(shape))


def _to_transformers(layout, value):
    if layout == COPY:
        result = value
    elif layout == LINEAR:
        result = value.T
    elif layout == HEADS_IN:
        result = value.reshape(value.shape[0], -1).T
    elif layout == HEADS_BIAS:
        result = value.reshape(-1)
    elif layout == HEADS_OUT:
        result = value.reshape(-1, value.shape[-1]).T
    else:
        raise ValueError(f"Unknown layout {layout!r}.")
    return np.ascontiguousarray(result)


def _dense(name, layer):
    return [
        (f"{name}.weight", layer.kernel, LINEAR),
        (f"{name}.bias", layer.bias, COPY),
    ]


def _layer_norm(name, layer):
    return [
        (f"{name}.weight", layer.gamma, COPY),
        (f"{name}.bias", layer.beta, COPY),
    ]


def _embedding_entries(backbone):
    return [
        (
            "embeddings.word_embeddings.weight",
            backbone.token_embedding.embeddings,
            COPY,
        ),
        (
            "embeddings.position_embeddings.weight",
            backbone.position_embedding.position_embeddings,
            COPY,
        ),
        (
            "embeddings.token_type_embeddings.weight",
            backbone.segment_embedding.embeddings,
            COPY,
        ),
        *_layer_norm("embeddings.LayerNorm", backbone.embeddings_layer_norm),
    ]


def _backbone_entries(backbone, include_embeddings=True):
    """`(transformers name, Keras variable, layout)` of `ElectraModel`."""
    entries = _embedding_entries(backbone) if include_embeddings else []
    if backbone.hidden_dim != backbone.embedding_dim:
        entries += _dense("embeddings_project", backbone.embeddings_projection)
    for i, layer in enumerate(backbone.transformer_layers):
        prefix = f"encoder.layer.{i}."
        attention = layer._self_attention_layer
        for name, dense in (
            ("query", attention._query_dense),
            ("key", attention._key_dense),
            ("value", attention._value_dense),
        ):
            path = f"{prefix}attention.self.{name}"
            entries += [
                (f"{path}.weight", dense.kernel, HEADS_IN),
                (f"{path}.bias", dense.bias, HEADS_BIAS),
            ]
        entries += [
            (
                f"{prefix}attention.output.dense.weight",
                attention._output_dense.kernel,
                HEADS_OUT,
            ),
            (
                f"{prefix}attention.output.dense.bias",
                attention._output_dense.bias,
                COPY,
            ),
            *_layer_norm(
                f"{prefix}attention.output.LayerNorm",
                layer._self_attention_layer_norm,
            ),
            *_dense(
                f"{prefix}intermediate.dense",
                layer._feedforward_intermediate_dense,
            ),
            *_dense(f"{prefix}output.dense", layer._feedforward_output_dense),
            *_layer_norm(
                f"{prefix}output.LayerNorm", layer._feedforward_layer_norm
            ),
        ]
    return entries


def _discriminator_head_entries(discriminator):
    head = discriminator.replaced_token_head
    return _dense("discriminator_predictions.dense", head.dense) + _dense(
        "discriminator_predictions.dense_prediction", head.prediction
    )


def _generator_head_entries(generator):
    head = generator.masked_lm_head
    return [
        *_dense("generator_predictions.dense", head._intermediate_dense),
        *_layer_norm(
            "generator_predictions.LayerNorm", head._intermediate_layer_norm
        ),
        ("generator_lm_head.bias", head._bias, COPY),
    ]


def _text_classifier_head_entries(classifier):
    if classifier.head != "hf":
        raise ValueError(
            "Only `head='hf'` has a `transformers` counterpart "
            f"(ElectraForSequenceClassification); got head={classifier.head!r}."
        )
    if classifier.pooling != "cls":
        raise ValueError(
            "`transformers`' ElectraForSequenceClassification reads `[CLS]`; "
            f"a classifier with pooling={classifier.pooling!r} has no "
            "counterpart there."
        )
    return _dense("classifier.dense", classifier.classifier_dense) + _dense(
        "classifier.out_proj", classifier.output_dense
    )


def _token_classifier_head_entries(classifier):
    return _dense("classifier", classifier.output_dense)


def _question_answerer_head_entries(answerer):
    return _dense("qa_outputs", answerer.span_dense)


# Task class -> (transformers architecture, head weights, head description).
TASK_HEADS = {
    ElectraDiscriminator: (
        "ElectraForPreTraining",
        _discriminator_head_entries,
        "replaced-token-detection head",
    ),
    ElectraTextClassifier: (
        "ElectraForSequenceClassification",
        _text_classifier_head_entries,
        "classification head",
    ),
    ElectraTokenClassifier: (
        "ElectraForTokenClassification",
        _token_classifier_head_entries,
        "token classification head",
    ),
    ElectraQuestionAnswerer: (
        "ElectraForQuestionAnswering",
        _question_answerer_head_entries,
        "question answering head",
    ),
}


def _task_head(task):
    for task_cls, head in TASK_HEADS.items():
        if isinstance(task, task_cls):
            return head
    return None


# === Reading checkpoints ===


def _normalize_name(name):
    if name.startswith(BACKBONE_PREFIX):
        name = name[len(BACKBONE_PREFIX) :]
    # Very old checkpoints name LayerNorm parameters gamma and beta.
    if ".LayerNorm." in name or name.startswith("LayerNorm."):
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
    return name


class TransformersCheckpoint(contextlib.ExitStack):
    """The tensors of a `transformers` checkpoint, by prefix-free name.

    Opens `model.safetensors`, the shards listed in
    `model.safetensors.index.json` or, failing both, `pytorch_model.bin`.
    Names are looked up without the `electra.` prefix that task models add.
    """

    def __init__(self, preset):
        super().__init__()
        self.preset = preset
        self._keys = {}
        self._readers = {}
        if preset_utils.check_file_exists(preset, SAFETENSORS_FILE):
            self._open_safetensors(SAFETENSORS_FILE)
        elif preset_utils.check_file_exists(preset, SAFETENSORS_INDEX_FILE):
            index = preset_utils.load_json(preset, SAFETENSORS_INDEX_FILE)
            for filename in sorted(set(index["weight_map"].values())):
                self._open_safetensors(filename)
        elif preset_utils.check_file_exists(preset, PYTORCH_FILE):
            self._open_pytorch(PYTORCH_FILE)
        else:
            raise ValueError(
                f"{_source(preset)} has no weights file: expected "
                f"{SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} or "
                f"{PYTORCH_FILE}. Pass `load_weights=False` for a randomly "
                "initialised model of its architecture."
            )

    def _add(self, key, reader):
        name = _normalize_name(key)
        if name in self._keys:
            raise ValueError(
                f"{_source(self.preset)} holds both '{self._keys[name]}' and "
                f"'{key}'; cannot tell which one to load."
            )
        self._keys[name] = key
        self._readers[name] = reader

    def _open_safetensors(self, filename):
        try:
            import safetensors
        except ImportError:
            raise ImportError(
                "Reading `transformers` checkpoints needs the `safetensors` "
                "package: `pip install safetensors`."
            ) from None
        path = preset_utils.get_file(self.preset, filename)
        try:
            file = self.enter_context(
                safetensors.safe_open(path, framework="np")
            )
        except Exception as error:
            raise ValueError(
                f"{_source(self.preset)}: {filename} is truncated or corrupt "
                f"({type(error).__name__}: {error})."
            ) from None
        for key in file.keys():
            self._add(key, lambda key=key, file=file: file.get_tensor(key))

    def _open_pytorch(self, filename):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"{_source(self.preset)} stores its weights in {filename}, "
                "which only `torch` can read: `pip install torch`, or save "
                "the checkpoint as safetensors "
                "(`save_pretrained(..., safe_serialization=True)`)."
            ) from None
        path = preset_utils.get_file(self.preset, filename)
        # weights_only=True: tensors only, never arbitrary pickled objects.
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # UnpicklingError, truncated zip, ...
            detail = " ".join(str(error).split())[:300]
            raise ValueError(
                f"{_source(self.preset)}: {filename} is refused or corrupt: "
                "only plain tensors are loaded from it (`torch.load(..., "
                "weights_only=True)`), never pickled objects or code "
                f"({type(error).__name__}: {detail})."
            ) from None
        if not isinstance(state, dict):
            raise ValueError(
                f"{_source(self.preset)}: {filename} holds a "
                f"{type(state).__name__}, not a state dict of tensors."
            )
        for key, tensor in state.items():
            if not torch.is_tensor(tensor):
                continue
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            array = tensor.detach().cpu().numpy()
            self._add(key, lambda array=array: array)

    def __contains__(self, name):
        return name in self._keys

    def key(self, name):
        """The name as stored in the checkpoint (with its prefix, if any)."""
        return self._keys.get(name, name)

    def get(self, name):
        return np.asarray(self._readers[name]())


def _check_present(checkpoint, entries, what):
    missing = [name for name, _, _ in entries if name not in checkpoint]
    if missing:
        shown = ", ".join(f"'{name}'" for name in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{_source(checkpoint.preset)} lacks {len(missing)} {what} "
            f"weight(s) that its config calls for: {shown}{more}."
        )


def _read_checked(checkpoint, name, variable, layout):
    """The checkpoint tensor `name`, after checking its shape."""
    array = checkpoint.get(name)
    expected = _transformers_shape(layout, variable.shape)
    if tuple(array.shape) != expected:
        raise ValueError(
            f"Weight '{checkpoint.key(name)}' of {_source(checkpoint.preset)} "
            f"has shape {tuple(array.shape)}, but its config implies "
            f"{expected}."
        )
    return array


def _load_entries(checkpoint, entries, what):
    _check_present(checkpoint, entries, what)
    arrays = [
        _read_checked(checkpoint, name, variable, layout)
        for name, variable, layout in entries
    ]
    for (_, variable, layout), array in zip(entries, arrays):
        variable.assign(_to_keras(layout, array, variable.shape))


def _load_optional_head(checkpoint, entries, what, architecture_hint):
    """Load a task head if the checkpoint has one; warn if it has none."""
    if not any(name in checkpoint for name, _, _ in entries):
        warnings.warn(
            f"{_source(checkpoint.preset)} holds no {what} weights (they come "
            f"with `{architecture_hint}` checkpoints); the head keeps its "
            "random initialisation.",
            stacklevel=4,
        )
        return False
    _load_entries(checkpoint, entries, what)
    return True


def _load_generator_head(generator, checkpoint):
    loaded = _load_optional_head(
        checkpoint,
        _generator_head_entries(generator),
        "masked-LM head",
        "ElectraForMaskedLM",
    )
    if not loaded:
        return
    if "generator_lm_head.weight" in checkpoint:
        # Saved untied (or both copies of a tied weight): our output layer
        # is the token embedding, so the two must agree.
        output = checkpoint.get("generator_lm_head.weight")
        embedding = _numpy(generator.backbone.token_embedding.embeddings)
        if output.shape != embedding.shape or not np.allclose(
            output, embedding, atol=1e-6, rtol=0
        ):
            raise ValueError(
                f"{_source(checkpoint.preset)} has an output layer "
                "'generator_lm_head.weight' that differs from the token "
                "embedding; ElectraGenerator ties the two and cannot hold it."
            )
    if generator.backbone.approximate_gelu:
        _warn_generator_head_gelu(stacklevel=4)


def _warn_generator_head_gelu(stacklevel):
    warnings.warn(
        "`transformers`' ElectraForMaskedLM applies exact GELU in its "
        "prediction head whatever `hidden_act` says, while this "
        "ElectraGenerator (approximate_gelu=True) uses the tanh approximation "
        "there as everywhere else: its logits differ slightly from "
        "`transformers`'.",
        stacklevel=stacklevel,
    )


# === Loading ===


def _build_backbone(cls, preset, overrides):
    config = backbone_config_from_transformers(
        _load_config(preset), _source(preset)
    )
    return cls(**{**config, **overrides})


def load_backbone(cls, preset, load_weights, overrides):
    """`cls.from_preset(preset, ...)` for a `transformers` checkpoint."""
    preset = str(preset)
    backbone = _build_backbone(cls, preset, overrides)
    if load_weights:
        with TransformersCheckpoint(preset) as checkpoint:
            _load_entries(checkpoint, _backbone_entries(backbone), "encoder")
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
            _load_entries(checkpoint, _backbone_entries(backbone), "encoder")
            head = _task_head(task)
            if head is not None:
                architecture, entries, what = head
                _load_optional_head(
                    checkpoint, entries(task), what, architecture
                )
            elif isinstance(task, ElectraGenerator):
                _load_generator_head(task, checkpoint)
    return task


def _num_labels(preset):
    config = _load_config(preset)
    if "id2label" in config:
        return len(config["id2label"])
    if "num_labels" in config:
        return int(config["num_labels"])
    raise ValueError(
        f"{_source(preset)} does not say how many labels it has; pass "
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
                _load_config(discriminator), _source(discriminator)
            ),
            backbone_config_from_transformers(
                _load_config(generator), _source(generator)
            ),
            _source(generator),
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
    pretrainer = cls(backbone, **kwargs)
    if not load_weights:
        return pretrainer
    with TransformersCheckpoint(discriminator) as checkpoint:
        _load_entries(checkpoint, _backbone_entries(backbone), "encoder")
        _load_optional_head(
            checkpoint,
            _discriminator_head_entries(pretrainer.discriminator),
            "replaced-token-detection head",
            "ElectraForPreTraining",
        )
    if generator is None:
        return pretrainer
    generator_backbone = pretrainer.generator.backbone
    tied = pretrainer.tie_embeddings
    with TransformersCheckpoint(generator) as checkpoint:
        _load_entries(
            checkpoint,
            _backbone_entries(generator_backbone, include_embeddings=not tied),
            "encoder",
        )
        _load_generator_head(pretrainer.generator, checkpoint)
        if tied:
            _compare_embeddings(
                checkpoint, _embedding_entries(backbone), discriminator
            )
    return pretrainer


def _compare_embeddings(checkpoint, entries, discriminator):
    _check_present(checkpoint, entries, "embedding")
    differences = []
    for name, variable, layout in entries:
        theirs = _read_checked(checkpoint, name, variable, layout)
        ours = _numpy(variable)
        difference = float(np.max(np.abs(theirs.astype("float32") - ours)))
        if difference > EMBEDDING_TOLERANCE:
            differences.append(f"'{checkpoint.key(name)}' by {difference:.3g}")
    if differences:
        warnings.warn(
            "The generator's embeddings differ from the discriminator's "
            f"('{discriminator}'): {', '.join(differences)}. The pretrainer "
            "shares the discriminator's embeddings with the generator; pass "
            "`tie_embeddings=False` to keep the generator's own.",
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

    With `tie_embeddings=True` (the default) both towers use the
    discriminator's embeddings; a warning says if the generator checkpoint's
    embeddings differ from them (in released pairs they are identical).

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

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=500
    )
    directory = tempfile.mkdtemp()
    discriminator_dir = os.path.join(directory, "discriminator")
    generator_dir = os.path.join(directory, "generator")
    keras_electra.export_to_transformers(
        pretrainer.discriminator, discriminator_dir
    )
    keras_electra.export_to_transformers(pretrainer.generator, generator_dir)
    restored = keras_electra.pretrainer_from_transformers(
        discriminator_dir, generator_dir, mask_rate=0.2
    )
    restored.generator_size  # 0.5
    ```
    """
    return load_pretrainer(
        ElectraPretrainer, discriminator, generator, True, kwargs
    )


# === Export ===


def export_to_transformers(model, directory, tokenizer=None):
    """Save `model` as a `transformers` ELECTRA checkpoint.

    `ElectraBackbone` becomes `ElectraModel`, `ElectraDiscriminator`
    `ElectraForPreTraining` and `ElectraGenerator` `ElectraForMaskedLM`, each
    loadable with `transformers`' `from_pretrained` (and with our
    `from_preset`). Writes `config.json` (`hidden_act` `"gelu"` or
    `"gelu_new"` per `approximate_gelu`), `model.safetensors` (float32) and,
    with a `tokenizer` that has `get_vocabulary()`, `vocab.txt` and
    `tokenizer_config.json`. The backbone's `pooled_dense` has no
    counterpart in `transformers` and is left out. To export an
    `ElectraPretrainer`, export its `discriminator` and `generator`.

    The checkpoint is written to a temporary directory and moved into place,
    replacing an earlier export at `directory`; a non-empty `directory`
    without a `config.json` is refused rather than replaced.

    Note that `transformers`' `ElectraForMaskedLM` always uses exact GELU in
    its prediction head: a generator with `approximate_gelu=True` exports
    with a warning, as its logits will differ slightly there.

    Args:
        model: `ElectraBackbone`, `ElectraDiscriminator` or
            `ElectraGenerator`.
        directory: path of the checkpoint directory.
        tokenizer: optional tokenizer with `get_vocabulary()` (e.g.
            `keras_hub.models.ElectraTokenizer`).

    Example:
    ```python
    import tempfile
    import keras_electra

    discriminator = keras_electra.ElectraDiscriminator.from_preset(
        "electra_tiny", vocab_size=500
    )
    directory = tempfile.mkdtemp()
    keras_electra.export_to_transformers(discriminator, directory)
    restored = keras_electra.ElectraDiscriminator.from_preset(directory)
    ```
    """
    num_labels = None
    if _task_head(model) is not None:
        architecture, entries, _ = _task_head(model)
        backbone = model.backbone
        prefix = BACKBONE_PREFIX
        head_entries = entries(model)
        num_labels = getattr(model, "num_classes", None)
        if isinstance(model, ElectraQuestionAnswerer):
            num_labels = 2
    elif isinstance(model, ElectraGenerator):
        backbone = model.backbone
        architecture = "ElectraForMaskedLM"
        prefix = BACKBONE_PREFIX
        head_entries = _generator_head_entries(model)
        if backbone.approximate_gelu:
            _warn_generator_head_gelu(stacklevel=3)
    elif isinstance(model, keras_hub.models.ElectraBackbone):
        backbone = model
        architecture = "ElectraModel"
        prefix = ""
        head_entries = []
    elif isinstance(model, ElectraPretrainer):
        raise ValueError(
            "Export an ElectraPretrainer as two checkpoints: "
            "`export_to_transformers(pretrainer.discriminator, ...)` and "
            "`export_to_transformers(pretrainer.generator, ...)`."
        )
    else:
        raise ValueError(
            "`model` must be an ElectraBackbone, ElectraGenerator or one of "
            f"{sorted(cls.__name__ for cls in TASK_HEADS)}; got "
            f"{type(model).__name__}."
        )
    tensors = {}
    for name, variable, layout in _backbone_entries(backbone):
        tensors[prefix + name] = _to_transformers(layout, _numpy(variable))
    for name, variable, layout in head_entries:
        tensors[name] = _to_transformers(layout, _numpy(variable))

    vocabulary = None
    pad_token_id = 0
    if tokenizer is not None:
        vocabulary = [str(token) for token in tokenizer.get_vocabulary()]
        if len(vocabulary) != backbone.vocab_size:
            raise ValueError(
                f"The tokenizer has {len(vocabulary)} tokens, the model's "
                f"vocabulary {backbone.vocab_size}."
            )
        if "[PAD]" in vocabulary:
            pad_token_id = vocabulary.index("[PAD]")
    config = transformers_config(backbone, architecture, pad_token_id)
    if num_labels is not None:
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        if num_labels == 1:
            config["problem_type"] = "regression"

    def write(staging):
        from safetensors.numpy import save_file

        # transformers reads safetensors only with a "format" entry.
        save_file(
            tensors,
            os.path.join(staging, SAFETENSORS_FILE),
            metadata={"format": "pt"},
        )
        write_json(os.path.join(staging, CONFIG_FILE), config)
        if vocabulary is not None:
            _write_tokenizer(staging, tokenizer, vocabulary, backbone)

    preset_loading.save_atomically(write, directory)


def _numpy(variable):
    return keras.ops.convert_to_numpy(keras.ops.cast(variable, "float32"))


def _write_tokenizer(directory, tokenizer, vocabulary, backbone):
    with open(os.path.join(directory, VOCAB_FILE), "w", encoding="utf-8") as f:
        f.writelines(token + "\n" for token in vocabulary)
    config = {
        "tokenizer_class": "ElectraTokenizer",
        "model_max_length": backbone.max_sequence_length,
    }
    if hasattr(tokenizer, "lowercase"):
        config["do_lower_case"] = bool(tokenizer.lowercase)
    write_json(os.path.join(directory, TOKENIZER_CONFIG_FILE), config)
