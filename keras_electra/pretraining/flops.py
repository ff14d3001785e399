"""Model FLOPs of a pre-training step, counted analytically.

What the model has to compute, whatever a backend or another library
happens to do: the matrix multiplies of the encoders and heads and the
attention scores and weighted values, with vocabulary logits only where a
loss reads them (the masked positions, or every token for All-Tokens MLM).
Training is counted as three forward passes (forward, and the backward pass
for activations and for weights). Embedding look-ups, softmaxes, layer norms
and the optimizer are left out: they are a few percent at most.

Used to give pre-training objectives the same compute
(`benchmarks/electra_vs_mlm.py`) and to compute model-FLOPs utilisation
(`benchmarks/pretrain_throughput.py`).

Example:
```python
from keras_electra.pretraining import flops

encoder = {"vocab_size": 30522, "num_layers": 12, "hidden_dim": 256,
           "embedding_dim": 128, "intermediate_dim": 1024}
generator = dict(encoder, hidden_dim=64, intermediate_dim=256)
flops.pretraining_step_flops(
    "electra", encoder, generator, batch_size=32, sequence_length=128
)  # about 2.9e11
```
"""

# Kept in step with `objectives.OBJECTIVE_SPECS` by tests/test_flops.py.
OBJECTIVES_WITH_GENERATOR = ("electra", "electra_15", "replace_mlm", "all_tokens_mlm")


def encoder_matmul_parameters(config):
    """Weights one token is multiplied by in an encoder (backbone config)."""
    hidden, width = config["hidden_dim"], config["embedding_dim"]
    projection = hidden * width if hidden != width else 0
    layer = 4 * hidden * hidden + 2 * hidden * config["intermediate_dim"]
    return projection + config["num_layers"] * layer


def encoder_forward_flops(config, tokens, sequence_length):
    """Forward FLOPs of an encoder over `tokens` tokens."""
    attention = 4 * sequence_length * config["hidden_dim"] * config["num_layers"]
    return tokens * (2 * encoder_matmul_parameters(config) + attention)


def masked_lm_head_forward_flops(config, positions):
    """Forward FLOPs of an MLM head (dense, then the tied vocabulary
    projection) at `positions` positions."""
    width = config["embedding_dim"]
    return 2 * positions * width * (config["hidden_dim"] + config["vocab_size"])


def replaced_token_head_forward_flops(config, tokens):
    """Forward FLOPs of the replaced-token-detection head (dense, score)."""
    hidden = config["hidden_dim"]
    return 2 * tokens * (hidden * hidden + hidden)


def num_masked_positions(sequence_length, mask_rate=0.15):
    """Positions per sequence the pretrainer computes MLM logits for."""
    return int((mask_rate + 0.005) * sequence_length)


def pretraining_step_flops(
    objective,
    encoder_config,
    generator_config=None,
    batch_size=32,
    sequence_length=128,
    mask_rate=0.15,
):
    """Training FLOPs of one `ElectraPretrainer` step.

    Args:
        objective: one of `ElectraPretrainer`'s objectives.
        encoder_config: the config of the encoder that is kept (the
            discriminator, or the MLM model's backbone).
        generator_config: the generator backbone's config, for objectives
            with a generator.
        batch_size: sequences per step.
        sequence_length: tokens per sequence.
        mask_rate: fraction of tokens masked.

    Returns:
        The FLOPs of the forward and backward passes, as an int.
    """
    tokens = batch_size * sequence_length
    masked = batch_size * num_masked_positions(sequence_length, mask_rate)
    forward = encoder_forward_flops(encoder_config, tokens, sequence_length)
    if objective in OBJECTIVES_WITH_GENERATOR:
        if generator_config is None:
            raise ValueError(f"Objective '{objective}' needs `generator_config`.")
        forward += encoder_forward_flops(generator_config, tokens, sequence_length)
        forward += masked_lm_head_forward_flops(generator_config, masked)
    if objective in ("electra", "electra_15"):
        forward += replaced_token_head_forward_flops(encoder_config, tokens)
    elif objective in ("mlm", "replace_mlm"):
        forward += masked_lm_head_forward_flops(encoder_config, masked)
    elif objective == "all_tokens_mlm":
        forward += masked_lm_head_forward_flops(encoder_config, tokens)
        forward += replaced_token_head_forward_flops(encoder_config, tokens)
    else:
        raise ValueError(f"Unknown objective '{objective}'.")
    return 3 * forward


# The fine-tuning heads: a dense layer on `[CLS]` and the output layer
# (Hugging Face's `ElectraClassificationHead`), or an output layer on every
# token (token classification; question answering's start and end logits).
FINETUNING_TASKS = ("classifier", "token_classifier", "question_answerer")


def finetuning_step_flops(
    task, config, batch_size, sequence_length, num_classes=2, training=True
):
    """FLOPs of a fine-tuning training step (3x forward) or of a prediction
    (1x forward): the encoder and the task's head.

    Args:
        task: one of `FINETUNING_TASKS`: `"classifier"`
            (`ElectraTextClassifier`), `"token_classifier"`
            (`ElectraTokenClassifier`) or `"question_answerer"`
            (`ElectraQuestionAnswerer`, whose two outputs are the start and
            end logits; `num_classes` is ignored).
        config: the backbone's config.
        batch_size: sequences per step.
        sequence_length: tokens per sequence.
        num_classes: outputs of the classifiers' last layer.
        training: a training step if True, else a prediction.

    Returns:
        The FLOPs, as an int.
    """
    tokens = batch_size * sequence_length
    hidden = config["hidden_dim"]
    if task == "classifier":
        head = batch_size * 2 * (hidden * hidden + hidden * num_classes)
    elif task == "token_classifier":
        head = tokens * 2 * hidden * num_classes
    elif task == "question_answerer":
        head = tokens * 2 * hidden * 2
    else:
        raise ValueError(
            f"Unknown task '{task}'; expected one of {FINETUNING_TASKS}."
        )
    forward = encoder_forward_flops(config, tokens, sequence_length) + head
    return 3 * forward if training else forward
