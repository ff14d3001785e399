"""The analytic FLOP count matches the weights the models really have."""

import math

import pytest

from conftest import tiny_backbone
from conftest import tiny_pretrainer
from keras_electra.pretraining import flops


def kernel_sizes(model, include):
    return sum(
        math.prod(w.shape)
        for w in model.weights
        if w.path.endswith("kernel") and any(part in w.path for part in include)
    )


@pytest.fixture(scope="module")
def pretrainer():
    return tiny_pretrainer(generator_size=0.5)


def test_encoder_matmul_parameters_are_the_encoders_kernels(pretrainer):
    for backbone in (pretrainer.backbone, pretrainer.generator.backbone):
        # Every kernel a token passes through; not the pooler, which
        # pre-training never uses.
        expected = kernel_sizes(
            backbone, ("transformer_layer_", "embeddings_projection")
        )
        assert flops.encoder_matmul_parameters(backbone.get_config()) == expected


def test_heads_count_their_kernels(pretrainer):
    config = pretrainer.backbone.get_config()
    rtd_kernels = kernel_sizes(pretrainer.discriminator, ("replaced_token_head",))
    assert flops.replaced_token_head_forward_flops(config, 1) == 2 * rtd_kernels
    generator = pretrainer.generator
    generator_config = generator.backbone.get_config()
    # The dense layer, then the vocabulary projection tied to the embeddings.
    head_kernels = kernel_sizes(generator, ("mlm_head",)) + (
        generator_config["vocab_size"] * generator_config["embedding_dim"]
    )
    assert (
        flops.masked_lm_head_forward_flops(generator_config, 1)
        == 2 * head_kernels
    )


def test_objectives_pay_for_what_they_compute(pretrainer):
    encoder = pretrainer.backbone.get_config()
    generator = pretrainer.generator.backbone.get_config()
    cost = {
        objective: flops.pretraining_step_flops(
            objective, encoder, generator, batch_size=4, sequence_length=32
        )
        for objective in (
            "electra", "electra_15", "mlm", "replace_mlm", "all_tokens_mlm"
        )
    }
    tokens, masked = 4 * 32, 4 * flops.num_masked_positions(32)
    generator_cost = 3 * (
        flops.encoder_forward_flops(generator, tokens, 32)
        + flops.masked_lm_head_forward_flops(generator, masked)
    )
    rtd = 3 * flops.replaced_token_head_forward_flops(encoder, tokens)
    mlm_head = 3 * flops.masked_lm_head_forward_flops(encoder, masked)
    assert cost["electra"] == cost["electra_15"]
    assert cost["electra"] - cost["mlm"] == generator_cost + rtd - mlm_head
    assert cost["replace_mlm"] - cost["mlm"] == generator_cost
    # All-Tokens MLM: vocabulary logits at every token, and the copy gate.
    assert cost["all_tokens_mlm"] == (
        cost["replace_mlm"] - mlm_head
        + 3 * flops.masked_lm_head_forward_flops(encoder, tokens)
        + rtd
    )
    # Training is three forward passes; doubling the batch doubles it.
    assert flops.pretraining_step_flops(
        "mlm", encoder, batch_size=8, sequence_length=32
    ) == 2 * cost["mlm"]


@pytest.mark.parametrize("task", flops.FINETUNING_TASKS)
def test_finetuning_counts_the_encoder_and_the_heads_kernels(task):
    import keras_electra

    backbone = tiny_backbone()
    config = backbone.get_config()
    model = {
        "classifier": lambda: keras_electra.ElectraTextClassifier(
            backbone, num_classes=3
        ),
        "token_classifier": lambda: keras_electra.ElectraTokenClassifier(
            backbone, num_classes=3
        ),
        "question_answerer": lambda: keras_electra.ElectraQuestionAnswerer(
            backbone
        ),
    }[task]()
    encoder = {id(w) for w in backbone.weights}
    head = sum(
        math.prod(w.shape)
        for w in model.weights
        if w.path.endswith("kernel") and id(w) not in encoder
    )
    batch_size, length = 2, 16
    # The sequence classifier's head runs on `[CLS]` alone.
    positions = batch_size * (1 if task == "classifier" else length)
    forward = flops.encoder_forward_flops(
        config, batch_size * length, length
    ) + 2 * positions * head
    assert flops.finetuning_step_flops(
        task, config, batch_size, length, num_classes=3, training=False
    ) == forward
    assert flops.finetuning_step_flops(
        task, config, batch_size, length, num_classes=3
    ) == 3 * forward


def test_bad_arguments():
    config = {"vocab_size": 10, "num_layers": 1, "hidden_dim": 4,
              "embedding_dim": 4, "intermediate_dim": 8}
    with pytest.raises(ValueError, match="needs `generator_config`"):
        flops.pretraining_step_flops("electra", config)
    with pytest.raises(ValueError, match="Unknown objective"):
        flops.pretraining_step_flops("bert", config)
    with pytest.raises(ValueError, match="Unknown task 'ranker'"):
        flops.finetuning_step_flops("ranker", config, 2, 16)


def test_objectives_with_a_generator_match_the_objective_table():
    # flops.py imports nothing (the throughput benchmark loads it without
    # Keras), so it keeps its own tuple; it must agree with the pretrainer's.
    from keras_electra.pretraining.objectives import OBJECTIVE_SPECS

    assert flops.OBJECTIVES_WITH_GENERATOR == tuple(
        name for name, spec in OBJECTIVE_SPECS.items() if spec.has_generator
    )
