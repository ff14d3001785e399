"""The `transformers` ELECTRA format: file names, configs, and the mapping of
its tensors onto keras_electra variables (names and layouts).

How checkpoints flow in and out of keras_electra:

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

import math

import keras
import numpy as np

from keras_electra.models.electra_discriminator import ElectraDiscriminator
from keras_electra.models.electra_question_answerer import ElectraQuestionAnswerer
from keras_electra.models.electra_text_classifier import ElectraTextClassifier
from keras_electra.models.electra_token_classifier import ElectraTokenClassifier
from keras_electra.utils.keras_compat import preset_utils

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


def load_config(preset):
    try:
        return preset_utils.load_json(preset, CONFIG_FILE)
    except FileNotFoundError:
        raise ValueError(
            f"'{preset}' has no {CONFIG_FILE}; it is not a `transformers` "
            "checkpoint."
        ) from None


def source(preset):
    return f"The `transformers` checkpoint '{preset}'"


# === Weight layouts ===


def transformers_shape(layout, shape):
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


def to_keras(layout, array, shape):
    if layout == COPY:
        return array
    if layout == LINEAR:
        return array.T
    # (heads * head_dim, ...) -> per-head Keras kernels and biases.
    return array.T.reshape(tuple(shape))


def to_transformers(layout, value):
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


def embedding_entries(backbone):
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


def backbone_entries(backbone, include_embeddings=True):
    """`(transformers name, Keras variable, layout)` of `ElectraModel`."""
    entries = embedding_entries(backbone) if include_embeddings else []
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


def discriminator_head_entries(discriminator):
    head = discriminator.replaced_token_head
    return _dense("discriminator_predictions.dense", head.dense) + _dense(
        "discriminator_predictions.dense_prediction", head.prediction
    )


def generator_head_entries(generator):
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
        discriminator_head_entries,
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


def task_head(task):
    for task_cls, head in TASK_HEADS.items():
        if isinstance(task, task_cls):
            return head
    return None


def numpy(variable):
    return keras.ops.convert_to_numpy(keras.ops.cast(variable, "float32"))
