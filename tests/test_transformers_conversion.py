"""Hugging Face `transformers` ELECTRA checkpoints: loading, export, parity.

`transformers` (and so `torch`) builds and runs the reference models on
every Keras backend; the models are tiny and randomly initialised, with
weights scaled up so that outputs are of order one and a wrong mapping shows.
"""

import json
import os
import sys
import warnings

import keras
import keras_hub
import numpy as np
import pytest

import keras_electra
from keras_electra.conversion import transformers as transformers_conversion

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

VOCAB = 128
LENGTH = 12
ATOL = 1e-4
BASE = dict(
    vocab_size=VOCAB,
    embedding_size=8,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=16,
    hidden_act="gelu",
)
# Embedding width equal to and different from the hidden width, one and
# several heads, exact and approximate GELU.
CONFIGS = {
    "projected-exact": {},
    "one-head-approximate": dict(
        embedding_size=16, num_attention_heads=1, hidden_act="gelu_new"
    ),
    "three-heads-tanh": dict(
        hidden_size=24, num_attention_heads=3, hidden_act="gelu_pytorch_tanh"
    ),
}
MASK_POSITIONS = np.array([[1, 4, 9], [0, 2, 7], [1, 3, 4]], "int32")


def hf_config(**overrides):
    return transformers.ElectraConfig(**{**BASE, **overrides})


def hf_model(architecture, config, seed=0):
    """A `transformers` model with O(1) random weights, in eval mode."""
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm.weight" in name:
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.3 * noise)
    return model


def save(model, path, safe=True):
    """`save_pretrained`, or an old-style `pytorch_model.bin` checkpoint."""
    if safe:
        model.save_pretrained(str(path))
    else:
        # transformers 5 writes safetensors only; older versions wrote this.
        model.config.save_pretrained(str(path))
        torch.save(model.state_dict(), os.path.join(path, "pytorch_model.bin"))
    return str(path)


def batch(seed=0):
    """Three sequences, two of them padded."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, VOCAB, size=(3, LENGTH)).astype("int32")
    segment_ids = np.zeros((3, LENGTH), "int32")
    segment_ids[:, LENGTH // 2 :] = 1
    padding_mask = np.ones((3, LENGTH), "int32")
    padding_mask[1, 8:] = 0
    padding_mask[2, 5:] = 0
    token_ids[padding_mask == 0] = 0
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }


def run_hf(model, inputs):
    def tensor(name):
        return torch.tensor(inputs[name], dtype=torch.long)

    with torch.no_grad():
        return model(
            input_ids=tensor("token_ids"),
            token_type_ids=tensor("segment_ids"),
            attention_mask=tensor("padding_mask"),
        )


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def real(inputs):
    return inputs["padding_mask"].astype(bool)


def at_mask_positions(logits):
    return np.take_along_axis(logits, MASK_POSITIONS[..., None], axis=1)


# Each returns the largest absolute difference from `transformers`; the
# tests assert on them (and they can be called to measure).


def backbone_difference(path, reference):
    backbone = keras_electra.ElectraBackbone.from_preset(path)
    inputs = batch()
    ours = numpy(backbone(inputs)["sequence_output"])
    theirs = run_hf(reference, inputs).last_hidden_state.numpy()
    return float(np.abs(ours - theirs)[real(inputs)].max())


def discriminator_difference(path, reference):
    discriminator = keras_electra.ElectraDiscriminator.from_preset(path)
    inputs = batch()
    ours = numpy(discriminator(inputs))
    theirs = run_hf(reference, inputs).logits.numpy()
    return float(np.abs(ours - theirs)[real(inputs)].max())


def generator_difference(generator, reference):
    inputs = batch()
    ours = numpy(generator({**inputs, "mask_positions": MASK_POSITIONS}))
    theirs = at_mask_positions(run_hf(reference, inputs).logits.numpy())
    return float(np.abs(ours - theirs).max())


def load_generator(path, approximate):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generator = keras_electra.ElectraGenerator.from_preset(path)
    gelu_warnings = [w for w in caught if "exact GELU" in str(w.message)]
    assert bool(gelu_warnings) == approximate
    return generator


def exact_gelu_head_reference(reference, config):
    """`reference` with its head's GELU switched to ours, if ours differs.

    `transformers`' generator head always uses exact GELU; ours follows
    `hidden_act`. Switching theirs isolates the weight mapping.
    """
    if config.hidden_act != "gelu":
        reference.generator_predictions.activation = (
            transformers.activations.get_activation(config.hidden_act)
        )
    return reference


# === Loading ===


@pytest.mark.parametrize("name", CONFIGS)
def test_backbone_matches_electra_model(tmp_path, name):
    reference = hf_model("ElectraModel", hf_config(**CONFIGS[name]))
    path = save(reference, tmp_path / "model")
    assert backbone_difference(path, reference) <= ATOL


@pytest.mark.parametrize("name", CONFIGS)
def test_discriminator_matches_electra_for_pre_training(tmp_path, name):
    reference = hf_model("ElectraForPreTraining", hf_config(**CONFIGS[name]))
    path = save(reference, tmp_path / "model")
    assert discriminator_difference(path, reference) <= ATOL


def test_backbone_from_task_checkpoint(tmp_path):
    # Task checkpoints prefix the encoder's weights with "electra.".
    reference = hf_model("ElectraForPreTraining", hf_config())
    path = save(reference, tmp_path / "model")
    assert backbone_difference(path, reference.electra) <= ATOL


@pytest.mark.parametrize("name", CONFIGS)
def test_generator_matches_electra_for_masked_lm(tmp_path, name):
    config = hf_config(**CONFIGS[name])
    reference = hf_model("ElectraForMaskedLM", config)
    path = save(reference, tmp_path / "model")
    approximate = config.hidden_act != "gelu"
    generator = load_generator(path, approximate)
    if approximate:
        # The head's GELU variant is the one known difference...
        assert generator_difference(generator, reference) > ATOL
    # ...and with it aligned, the logits match.
    reference = exact_gelu_head_reference(reference, config)
    assert generator_difference(generator, reference) <= ATOL


def test_pytorch_bin_checkpoint(tmp_path):
    reference = hf_model("ElectraForMaskedLM", hf_config())
    path = save(reference, tmp_path / "model", safe=False)
    assert sorted(os.listdir(path)) == ["config.json", "pytorch_model.bin"]
    # Tied weights are stored twice in .bin files: both copies are checked.
    generator = load_generator(path, approximate=False)
    assert generator_difference(generator, reference) <= ATOL


def test_untied_output_layer_is_refused(tmp_path):
    config = hf_config(tie_word_embeddings=False)
    path = save(hf_model("ElectraForMaskedLM", config), tmp_path / "model")
    with pytest.raises(ValueError, match="generator_lm_head.weight"):
        keras_electra.ElectraGenerator.from_preset(path)


def test_sharded_safetensors_checkpoint(tmp_path):
    reference = hf_model("ElectraModel", hf_config())
    reference.save_pretrained(str(tmp_path / "model"), max_shard_size="8KB")
    assert os.path.exists(tmp_path / "model" / "model.safetensors.index.json")
    assert backbone_difference(str(tmp_path / "model"), reference) <= ATOL


def test_hf_handle_goes_through_the_converter(tmp_path, monkeypatch):
    """`hf://owner/name` is fetched file by file (faked here: no network)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from keras_hub.src.utils import preset_utils

    reference = hf_model("ElectraForPreTraining", hf_config())
    save(reference, tmp_path / "owner" / "name")
    fetched = []

    def hf_hub_download(repo_id, filename, **kwargs):
        local = os.path.join(tmp_path, repo_id, filename)
        if not os.path.exists(local):
            raise huggingface_hub.utils.EntryNotFoundError(filename)
        fetched.append(filename)
        return local

    monkeypatch.setattr(
        preset_utils.huggingface_hub, "hf_hub_download", hf_hub_download
    )
    assert discriminator_difference("hf://owner/name", reference) <= ATOL
    assert set(fetched) == {"config.json", "model.safetensors"}


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path, monkeypatch):
    path = save(hf_model("ElectraModel", hf_config()), tmp_path / "m", False)
    # (Only around the checkpoint reader: the torch backend itself needs it.)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pytorch_model.bin.*torch"):
        transformers_conversion.TransformersCheckpoint(path)


def test_head_missing_from_checkpoint_warns(tmp_path):
    path = save(hf_model("ElectraModel", hf_config()), tmp_path / "model")
    with pytest.warns(UserWarning, match="no replaced-token-detection head"):
        keras_electra.ElectraDiscriminator.from_preset(path)


def test_load_weights_false_needs_no_weights(tmp_path):
    path = tmp_path / "model"
    hf_config(**CONFIGS["three-heads-tanh"]).save_pretrained(str(path))
    backbone = keras_electra.ElectraBackbone.from_preset(
        path, load_weights=False, dropout=0.0
    )
    assert (backbone.hidden_dim, backbone.num_heads) == (24, 3)
    assert backbone.approximate_gelu and backbone.dropout == 0.0


def test_pretrainer_from_preset_takes_discriminator(tmp_path):
    reference = hf_model("ElectraForPreTraining", hf_config())
    path = save(reference, tmp_path / "model")
    pretrainer = keras_electra.ElectraPretrainer.from_preset(path, seed=1)
    inputs = batch()
    ours = numpy(pretrainer.discriminator(inputs))
    theirs = run_hf(reference, inputs).logits.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL


# === A released generator + discriminator pair ===


def hf_pair(tmp_path, generator_overrides=None, tie=True):
    discriminator = hf_model("ElectraForPreTraining", hf_config(), seed=1)
    generator_config = hf_config(
        **{
            "hidden_size": 8,
            "num_attention_heads": 1,
            "intermediate_size": 32,
            **(generator_overrides or {}),
        }
    )
    generator = hf_model("ElectraForMaskedLM", generator_config, seed=2)
    if tie:
        generator.electra.embeddings.load_state_dict(
            discriminator.electra.embeddings.state_dict()
        )
    return (
        discriminator,
        generator,
        save(discriminator, tmp_path / "discriminator"),
        save(generator, tmp_path / "generator"),
    )


@pytest.mark.parametrize("tie", [True, False])
def test_pretrainer_from_transformers_pair(tmp_path, tie):
    discriminator, generator, d_path, g_path = hf_pair(tmp_path, tie=tie)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrainer = keras_electra.pretrainer_from_transformers(
            d_path,
            g_path,
            mask_rate=0.2,
            embedding_sharing="tied" if tie else "separate",
            seed=3,
        )
    assert not [w for w in caught if "differs" in str(w.message)]
    assert pretrainer.generator_size == 0.5
    assert pretrainer.mask_rate == 0.2
    inputs = batch()
    ours = numpy(pretrainer.discriminator(inputs))
    theirs = run_hf(discriminator, inputs).logits.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL
    assert generator_difference(pretrainer.generator, generator) <= ATOL


def test_gdes_pair_keeps_both_token_tables(tmp_path):
    discriminator, generator, d_path, _ = hf_pair(tmp_path)
    with torch.no_grad():
        generator.electra.embeddings.word_embeddings.weight.add_(0.01)
    g_path = save(generator, tmp_path / "generator_own_words")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrainer = keras_electra.pretrainer_from_transformers(
            d_path, g_path, embedding_sharing="gdes", seed=3
        )
    assert not [w for w in caught if "differ" in str(w.message)]
    embedding = pretrainer.backbone.token_embedding
    np.testing.assert_allclose(
        numpy(embedding.shared_embedding.embeddings),
        generator.electra.embeddings.word_embeddings.weight.detach().numpy(),
        atol=1e-7,
    )
    inputs = batch()
    ours = numpy(pretrainer.discriminator(inputs))
    theirs = run_hf(discriminator, inputs).logits.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL
    assert generator_difference(pretrainer.generator, generator) <= ATOL


def test_pair_with_different_embeddings_warns(tmp_path):
    _, _, d_path, g_path = hf_pair(tmp_path, tie=False)
    with pytest.warns(UserWarning, match="differ.*word_embeddings.*token_type"):
        keras_electra.pretrainer_from_transformers(d_path, g_path)


def test_pair_off_the_generator_rule_is_refused(tmp_path):
    _, _, d_path, g_path = hf_pair(
        tmp_path, {"num_attention_heads": 2, "intermediate_size": 16}
    )
    with pytest.raises(ValueError, match="num_heads=2.*num_heads=1"):
        keras_electra.pretrainer_from_transformers(d_path, g_path)


# === Export ===


def random_weights(model, seed=0):
    """Like `hf_model`: O(1) random weights for a Keras model."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        noise = rng.normal(size=variable.shape)
        if variable.path.endswith("gamma"):
            variable.assign(1.0 + 0.1 * noise)
        else:
            variable.assign(0.3 * noise)
    return model


def keras_backbone(**overrides):
    config = dict(
        vocab_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        embedding_dim=8,
        intermediate_dim=32,
        max_sequence_length=16,
        approximate_gelu=False,
    )
    return keras_electra.ElectraBackbone(**{**config, **overrides})


@pytest.mark.parametrize("approximate_gelu", [False, True])
def test_export_backbone(tmp_path, approximate_gelu):
    backbone = random_weights(
        keras_backbone(
            approximate_gelu=approximate_gelu,
            num_heads=1,
            embedding_dim=16,
        )
    )
    keras_electra.export_to_transformers(backbone, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architectures"] == ["ElectraModel"]
    assert config["hidden_act"] == ("gelu_new" if approximate_gelu else "gelu")
    reference = transformers.ElectraModel.from_pretrained(
        str(tmp_path / "model")
    ).eval()
    inputs = batch()
    ours = numpy(backbone(inputs)["sequence_output"])
    theirs = run_hf(reference, inputs).last_hidden_state.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL


def test_export_keras_hub_backbone(tmp_path):
    backbone = random_weights(
        keras_hub.models.ElectraBackbone(
            vocab_size=VOCAB,
            num_layers=2,
            num_heads=2,
            hidden_dim=16,
            embedding_dim=8,
            intermediate_dim=32,
            max_sequence_length=16,
        )
    )
    keras_electra.export_to_transformers(backbone, tmp_path / "model")
    reference = transformers.ElectraModel.from_pretrained(
        str(tmp_path / "model")
    ).eval()
    inputs = batch()
    ours = numpy(backbone(inputs)["sequence_output"])
    theirs = run_hf(reference, inputs).last_hidden_state.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL


def test_export_discriminator(tmp_path):
    discriminator = random_weights(
        keras_electra.ElectraDiscriminator(keras_backbone(num_heads=4))
    )
    keras_electra.export_to_transformers(discriminator, tmp_path / "model")
    reference = transformers.ElectraForPreTraining.from_pretrained(
        str(tmp_path / "model")
    ).eval()
    inputs = batch()
    ours = numpy(discriminator(inputs))
    theirs = run_hf(reference, inputs).logits.numpy()
    assert np.abs(ours - theirs)[real(inputs)].max() <= ATOL
    # And back into keras_electra.
    restored = keras_electra.ElectraDiscriminator.from_preset(
        str(tmp_path / "model")
    )
    np.testing.assert_allclose(
        numpy(restored(inputs)), ours, atol=1e-6, rtol=0
    )


def test_export_generator(tmp_path):
    generator = random_weights(keras_electra.ElectraGenerator(keras_backbone()))
    keras_electra.export_to_transformers(generator, tmp_path / "model")
    reference = transformers.ElectraForMaskedLM.from_pretrained(
        str(tmp_path / "model")
    ).eval()
    assert generator_difference(generator, reference) <= ATOL


def test_export_approximate_generator_warns(tmp_path):
    generator = keras_electra.ElectraGenerator(
        keras_backbone(approximate_gelu=True)
    )
    with pytest.warns(UserWarning, match="exact GELU"):
        keras_electra.export_to_transformers(generator, tmp_path / "model")


def test_export_pretrainer_towers_round_trip(tmp_path):
    pretrainer = keras_electra.ElectraPretrainer(
        keras_backbone(), generator_size=0.5, seed=0
    )
    random_weights(pretrainer)
    d_path, g_path = tmp_path / "discriminator", tmp_path / "generator"
    keras_electra.export_to_transformers(pretrainer.discriminator, d_path)
    keras_electra.export_to_transformers(pretrainer.generator, g_path)
    restored = keras_electra.pretrainer_from_transformers(d_path, g_path)
    inputs = {**batch(), "mask_positions": MASK_POSITIONS}
    np.testing.assert_allclose(
        numpy(restored.generator(inputs)),
        numpy(pretrainer.generator(inputs)),
        atol=1e-5,
        rtol=0,
    )
    with pytest.raises(
        ValueError, match=r"two checkpoints.*tokenizer=pretrainer\.tokenizer"
    ):
        keras_electra.export_to_transformers(pretrainer, tmp_path / "p")


class VocabularyOnly:
    lowercase = True

    def get_vocabulary(self):
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        return special + [f"w{i}" for i in range(VOCAB - len(special))]


def test_export_writes_vocabulary(tmp_path):
    path = tmp_path / "model"
    backbone = keras_backbone()
    keras_electra.export_to_transformers(backbone, path, VocabularyOnly())
    lines = (path / "vocab.txt").read_text().splitlines()
    assert lines == VocabularyOnly().get_vocabulary()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    assert tokenizer("w0 w7")["input_ids"] == [2, 5, 12, 3]


def test_export_takes_the_tokenizer_of_the_models_preprocessor(tmp_path):
    # Without it, a checkpoint of a model with its own vocabulary would load
    # back with BERT's special token ids.
    vocabulary = VocabularyOnly().get_vocabulary()
    classifier = keras_electra.ElectraTextClassifier(
        keras_backbone(),
        num_classes=2,
        preprocessor=keras_electra.ElectraTextClassifierPreprocessor(
            keras_electra.ElectraTokenizer(vocabulary, lowercase=True),
            sequence_length=8,
        ),
    )
    path = tmp_path / "model"
    keras_electra.export_to_transformers(classifier, path)
    assert (path / "vocab.txt").read_text().splitlines() == vocabulary
    restored = keras_electra.ElectraTextClassifier.from_preset(str(path))
    assert restored.preprocessor.tokenizer.get_vocabulary() == vocabulary


def test_export_replaces_only_checkpoints(tmp_path):
    backbone = keras_backbone()
    path = tmp_path / "model"
    keras_electra.export_to_transformers(backbone, path)
    keras_electra.export_to_transformers(backbone, path)  # replaces
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no staging left
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not replacing it"):
        keras_electra.export_to_transformers(backbone, other)
    assert (other / "notes.txt").read_text() == "keep me"


# === Errors ===


def write_config(path, **config):
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def test_bert_config_is_refused(tmp_path):
    path = tmp_path / "bert"
    transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
    ).save_pretrained(str(path))
    for load in (
        keras_electra.ElectraBackbone.from_preset,
        keras_electra.ElectraDiscriminator.from_preset,
        keras_electra.ElectraGenerator.from_preset,
    ):
        with pytest.raises(ValueError, match="'bert' model, not ELECTRA"):
            load(str(path))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"hidden_act": "relu"}, "hidden_act='relu'"),
        ({"layer_norm_eps": 1e-5}, "layer_norm_eps=1e-05"),
        ({"position_embedding_type": "relative_key"}, "relative_key"),
        ({"is_decoder": True}, "is_decoder"),
    ],
)
def test_unsupported_config_is_refused(tmp_path, config, message):
    path = write_config(tmp_path / "model", model_type="electra", **config)
    with pytest.raises(ValueError, match=message):
        keras_electra.ElectraBackbone.from_preset(path, load_weights=False)


def test_shape_mismatch_names_the_weight(tmp_path):
    path = save(hf_model("ElectraModel", hf_config()), tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["intermediate_size"] = 48
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError,
        match=r"'encoder\.layer\.0\.intermediate\.dense\.weight'.*"
        r"\(32, 16\).*\(48, 16\)",
    ):
        keras_electra.ElectraBackbone.from_preset(path)


def drop_weights(path, *names):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    weights_file = os.path.join(path, "model.safetensors")
    tensors = load_file(weights_file)
    for name in names:
        del tensors[name]
    save_file(tensors, weights_file, metadata={"format": "pt"})


def test_missing_weights_are_named(tmp_path):
    path = save(hf_model("ElectraForPreTraining", hf_config()), tmp_path / "m")
    drop_weights(path, "electra.encoder.layer.1.output.LayerNorm.bias")
    with pytest.raises(
        ValueError, match="lacks 1 encoder.*layer.1.output.LayerNorm.bias"
    ):
        keras_electra.ElectraBackbone.from_preset(path)


def test_partial_head_is_refused(tmp_path):
    path = save(hf_model("ElectraForPreTraining", hf_config()), tmp_path / "m")
    drop_weights(path, "discriminator_predictions.dense.weight")
    keras_electra.ElectraBackbone.from_preset(path)  # the encoder is complete
    with pytest.raises(ValueError, match="discriminator_predictions.dense.w"):
        keras_electra.ElectraDiscriminator.from_preset(path)


def test_missing_weights_file(tmp_path):
    path = tmp_path / "model"
    hf_config().save_pretrained(str(path))
    with pytest.raises(ValueError, match="no weights file.*model.safetensors"):
        keras_electra.ElectraBackbone.from_preset(str(path))


def test_is_transformers_preset(tmp_path):
    path = save(hf_model("ElectraModel", hf_config()), tmp_path / "model")
    assert transformers_conversion.is_transformers_preset(path)
    keras_dir = tmp_path / "keras"
    keras_backbone().save_to_preset(str(keras_dir))
    assert not transformers_conversion.is_transformers_preset(str(keras_dir))
    assert not transformers_conversion.is_transformers_preset("electra_tiny")
    assert not transformers_conversion.is_transformers_preset(
        str(tmp_path / "absent")
    )
