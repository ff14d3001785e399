"""keras_electra models out to the `transformers` ELECTRA format (export)."""

import os

import keras_hub

from keras_electra.conversion.transformers_format import BACKBONE_PREFIX
from keras_electra.conversion.transformers_format import CONFIG_FILE
from keras_electra.conversion.transformers_format import SAFETENSORS_FILE
from keras_electra.conversion.transformers_format import TASK_HEADS
from keras_electra.conversion.transformers_format import TOKENIZER_CONFIG_FILE
from keras_electra.conversion.transformers_format import VOCAB_FILE
from keras_electra.conversion.transformers_format import backbone_entries
from keras_electra.conversion.transformers_format import generator_head_entries
from keras_electra.conversion.transformers_format import numpy
from keras_electra.conversion.transformers_format import task_head
from keras_electra.conversion.transformers_format import to_transformers
from keras_electra.conversion.transformers_format import transformers_config
from keras_electra.conversion.transformers_reader import warn_generator_head_gelu
from keras_electra.models.electra_backbone import fold_embeddings
from keras_electra.models.electra_generator import ElectraGenerator
from keras_electra.models.electra_question_answerer import ElectraQuestionAnswerer
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.utils import preset_loading
from keras_electra.utils.file_io import write_json

# === Export ===


def export_to_transformers(model, directory, tokenizer=None):
    """Save `model` as a `transformers` ELECTRA checkpoint.

    `ElectraBackbone` becomes `ElectraModel`, `ElectraDiscriminator`
    `ElectraForPreTraining` and `ElectraGenerator` `ElectraForMaskedLM`, each
    loadable with `transformers`' `from_pretrained` (and with our
    `from_preset`). Writes `config.json` (`hidden_act` `"gelu"` or
    `"gelu_new"` per `approximate_gelu`), `model.safetensors` (float32) and,
    with a tokenizer, `vocab.txt` and `tokenizer_config.json`. The
    backbone's `pooled_dense` has no counterpart in `transformers` and is
    left out. To export an `ElectraPretrainer`, export its `discriminator`
    and `generator` with `tokenizer=pretrainer.tokenizer` (the towers hold
    no tokenizer, and a pair without `vocab.txt` loads back with BERT's
    special token ids); the discriminator of `embedding_sharing="gdes"` is
    exported with its token table folded (`shared + delta`,
    `fold_embeddings`).

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
            `keras_electra.ElectraTokenizer`). Defaults to the tokenizer of
            the model's `preprocessor`, where it has one.

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
    if task_head(model) is not None:
        architecture, entries, _ = task_head(model)
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
        head_entries = generator_head_entries(model)
        if backbone.approximate_gelu:
            warn_generator_head_gelu(stacklevel=3)
    elif isinstance(model, keras_hub.models.ElectraBackbone):
        backbone = model
        architecture = "ElectraModel"
        prefix = ""
        head_entries = []
    elif isinstance(model, ElectraPretrainer):
        raise ValueError(
            "Export an ElectraPretrainer as two checkpoints: "
            "`export_to_transformers(pretrainer.discriminator, ..., "
            "tokenizer=pretrainer.tokenizer)` and the same for "
            "`pretrainer.generator`."
        )
    else:
        raise ValueError(
            "`model` must be an ElectraBackbone, ElectraGenerator or one of "
            f"{sorted(cls.__name__ for cls in TASK_HEADS)}; got "
            f"{type(model).__name__}."
        )
    backbone = fold_embeddings(backbone)
    tensors = {}
    for name, variable, layout in backbone_entries(backbone):
        tensors[prefix + name] = to_transformers(layout, numpy(variable))
    for name, variable, layout in head_entries:
        tensors[name] = to_transformers(layout, numpy(variable))

    if tokenizer is None:
        preprocessor = getattr(model, "preprocessor", None)
        tokenizer = getattr(preprocessor, "tokenizer", None)
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
