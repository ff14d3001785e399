"""The pre-training method, as pure functions over `keras.ops`.

`ElectraPretrainer.call` and `compute_loss` are these functions wired
together; each works on every backend and inside a compiled step. Random
draws take a `seed` (an int, or a `keras.random.SeedGenerator` that every
call advances), so a step run twice from the same state draws the same.

What differs between the objectives is in one table, `OBJECTIVE_SPECS`: the
parts each one trains, its masking defaults and which tokens its losses
count.

Example:
```python
import numpy as np
from keras_electra.pretraining import objectives

token_ids = np.array([[101, 7, 8, 9, 10, 102]])
padding_mask = np.ones_like(token_ids)
positions, weights = objectives.choose_mask_positions(
    token_ids, padding_mask, special_token_ids=(0, 101, 102, 103),
    mask_rate=0.3, seed=0,
)
is_masked = objectives.mask_of_positions(positions, weights, 6)
generator_input = objectives.mask_tokens(
    token_ids, is_masked, mask_token_id=103, vocab_size=200,
    mask_token_rate=0.85, random_token_rate=0.0, seed=1,
)
generator_logits = np.zeros((1, positions.shape[1], 200), "float32")
samples = objectives.softmax_sample(generator_logits, 1.0, seed=2)
corrupted = objectives.scatter_at_positions(
    token_ids, positions, weights, samples
)
replaced = objectives.replaced_labels(corrupted, token_ids)
```
"""

import dataclasses

import keras
from keras import ops

# Added to the denominator of every weighted mean: a batch with nothing to
# count (no masked token) gives a loss of 0, not NaN.
_EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """What one pre-training objective trains and what its losses count.

    Attributes:
        has_generator: bool. A small generator fills the masked positions
            with samples; without one, the encoder reads the masked text.
        rtd_tokens: `"real"`, `"masked"` or `None`: the tokens the
            replaced-token-detection (RTD) loss counts (every non-padding
            token, or only the masked positions); `None`: no RTD head.
        mlm_tokens: `"masked"`, `"all"` or `None`: the tokens the encoder's
            own MLM head predicts; `None`: no MLM head on the encoder.
        copy_mechanism: bool. The MLM head's output is mixed with a copy of
            the input token, gated by the RTD head (All-Tokens MLM).
        mask_token_rate: float. Default share of the masked positions shown
            as `[MASK]`.
        random_token_rate: float. Default share shown as a random token.
    """

    has_generator: bool
    rtd_tokens: str
    mlm_tokens: str
    copy_mechanism: bool
    mask_token_rate: float
    random_token_rate: float

    @property
    def has_rtd_head(self):
        return self.rtd_tokens is not None

    @property
    def has_mlm_head(self):
        return self.mlm_tokens is not None


# The paper's objective and its ablations (Section 3.2), BERT's MLM among
# them with its 80/10/10 masking.
OBJECTIVE_SPECS = {
    name: ObjectiveSpec(*row)
    for name, row in {
        # name: (generator, RTD loss over, MLM over, copy, [MASK], random)
        "electra": (True, "real", None, False, 0.85, 0.0),
        "electra_15": (True, "masked", None, False, 0.85, 0.0),
        "mlm": (False, None, "masked", False, 0.8, 0.1),
        "replace_mlm": (True, None, "masked", False, 0.85, 0.0),
        "all_tokens_mlm": (True, "real", "all", True, 0.85, 0.0),
    }.items()
}


def num_mask_slots(sequence_length, mask_rate):
    """The most positions masked per sequence: the static mask width.

    Args:
        sequence_length: int.
        mask_rate: float in (0, 1).

    Returns:
        `int((mask_rate + 0.005) * sequence_length)`, as the original.

    Example:
    ```python
    from keras_electra.pretraining.objectives import num_mask_slots

    num_mask_slots(128, 0.15)  # 19
    ```
    """
    slots = int((mask_rate + 0.005) * sequence_length)
    if slots < 1:
        raise ValueError(
            f"Sequences of length {sequence_length} are too short to mask "
            f"at `mask_rate={mask_rate}`."
        )
    return slots


def choose_mask_positions(
    token_ids, padding_mask, special_token_ids, mask_rate, seed
):
    """Pick `mask_rate` of each sequence's real tokens, uniformly at random.

    Special tokens and padding are never picked. A sequence masks
    `round(mask_rate * real tokens)` positions, at least 1, at most
    `num_mask_slots` and at most its number of candidates; the unused slots
    have weight 0.

    Args:
        token_ids: int tensor `(batch, sequence_length)`.
        padding_mask: int or bool tensor, nonzero at real tokens.
        special_token_ids: the ids never to mask.
        mask_rate: float in (0, 1).
        seed: int or `keras.random.SeedGenerator`.

    Returns:
        `(mask_positions, mask_weights)`: int32 and float32 tensors
        `(batch, num_mask_slots)`; the used slots come first.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import choose_mask_positions

    token_ids = np.array([[101, 7, 8, 9, 102, 0]])
    positions, weights = choose_mask_positions(
        token_ids, token_ids != 0, (0, 101, 102, 103), mask_rate=0.3, seed=0
    )  # weights [[1.]]: round(0.3 * 5) = 2 is over the 1 slot
    ```
    """
    batch_size, sequence_length = ops.shape(token_ids)
    slots = num_mask_slots(sequence_length, mask_rate)
    is_real = ops.not_equal(padding_mask, 0)
    is_candidate = is_real
    for special_id in special_token_ids:
        is_candidate = is_candidate & ops.not_equal(token_ids, special_id)
    num_real = ops.sum(ops.cast(is_real, "float32"), axis=1)
    num_candidates = ops.sum(ops.cast(is_candidate, "int32"), axis=1)
    num_to_mask = ops.clip(
        ops.cast(ops.round(num_real * mask_rate), "int32"), 1, slots
    )
    num_to_mask = ops.minimum(num_to_mask, num_candidates)
    # Random scores, candidates above everything else: the top `slots` are
    # a uniform sample without replacement, in random order.
    scores = keras.random.uniform((batch_size, sequence_length), seed=seed)
    scores = ops.where(is_candidate, scores, -1.0)
    _, mask_positions = ops.top_k(scores, k=slots)
    mask_weights = ops.expand_dims(ops.arange(slots), 0) < ops.expand_dims(
        num_to_mask, 1
    )
    return ops.cast(mask_positions, "int32"), ops.cast(mask_weights, "float32")


def _slot_one_hot(mask_positions, mask_weights, sequence_length):
    """int32 `(batch, slots, sequence_length)`: each used slot's position."""
    one_hot = ops.one_hot(mask_positions, sequence_length, dtype="int32")
    return one_hot * ops.expand_dims(ops.cast(mask_weights, "int32"), -1)


def mask_of_positions(mask_positions, mask_weights, sequence_length):
    """The used mask slots as a dense bool mask over the sequence.

    Args:
        mask_positions: int tensor `(batch, slots)`.
        mask_weights: tensor `(batch, slots)`, nonzero at the used slots.
        sequence_length: int.

    Returns:
        bool tensor `(batch, sequence_length)`.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import mask_of_positions

    mask_of_positions(np.array([[3, 1]]), np.array([[1.0, 0.0]]), 5)
    # [[False, False, False, True, False]]
    ```
    """
    one_hot = _slot_one_hot(mask_positions, mask_weights, sequence_length)
    return ops.sum(one_hot, axis=1) > 0


def mask_tokens(
    token_ids,
    is_masked,
    mask_token_id,
    vocab_size,
    mask_token_rate,
    random_token_rate,
    seed,
):
    """The generator's input: each masked token becomes `[MASK]`, a random
    token or stays as it is.

    Args:
        token_ids: int tensor `(batch, sequence_length)`.
        is_masked: bool tensor of the same shape.
        mask_token_id: int.
        vocab_size: int; random tokens are drawn from `[0, vocab_size)`.
        mask_token_rate: float. Chance of `[MASK]`.
        random_token_rate: float. Chance of a random token (the rest stay).
        seed: int or `keras.random.SeedGenerator` (two draws).

    Returns:
        int32 tensor, `token_ids` with the masked positions replaced.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import mask_tokens

    mask_tokens(
        np.array([[5, 6, 7]]), np.array([[False, True, True]]),
        mask_token_id=103, vocab_size=200, mask_token_rate=1.0,
        random_token_rate=0.0, seed=0,
    )  # [[5, 103, 103]]
    ```
    """
    token_ids = ops.cast(token_ids, "int32")
    is_masked = ops.convert_to_tensor(is_masked)
    draw = keras.random.uniform(ops.shape(token_ids), seed=seed)
    show_mask = is_masked & (draw < mask_token_rate)
    show_random = (
        is_masked
        & (draw >= mask_token_rate)
        & (draw < mask_token_rate + random_token_rate)
    )
    random_ids = keras.random.randint(
        ops.shape(token_ids), 0, vocab_size, seed=seed, dtype="int32"
    )
    masked_token_ids = ops.where(show_random, random_ids, token_ids)
    return ops.where(show_mask, mask_token_id, masked_token_ids)


def softmax_sample(logits, temperature, seed):
    """One sample per position from `softmax(logits / temperature)`.

    Inverse-transform sampling: one uniform number per position, placed on
    the running sum of the softmax; the sample is the token whose interval
    it falls in. It draws what Gumbel-max sampling draws (the argmax of the
    logits plus Gumbel noise, the original's method) to float32 rounding of
    the running sum, with one random number per position instead of one
    per vocabulary entry: at `electra_small`'s 19 x 30,522 logits per
    sequence it is 1.6 to 5 times as fast on a CPU. No gradient flows back
    into `logits`.

    Args:
        logits: float tensor `(..., vocab_size)`.
        temperature: float > 0.
        seed: int or `keras.random.SeedGenerator`.

    Returns:
        int32 tensor `logits.shape[:-1]`.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import softmax_sample

    logits = np.log(np.array([[0.7, 0.2, 0.1]], "float32"))
    softmax_sample(logits, temperature=1.0, seed=0)  # 0, most often
    ```
    """
    logits = ops.stop_gradient(ops.convert_to_tensor(logits, "float32"))
    if not (isinstance(temperature, (int, float)) and temperature == 1):
        logits = logits / temperature
    cumulative = ops.cumsum(ops.softmax(logits, axis=-1), -1)
    # Scaled by the total, which rounding leaves a little off 1, and kept
    # below it: a draw that rounded up to the total could pass tokens of
    # probability 0 at the end of the vocabulary.
    total = cumulative[..., -1:]
    uniform = keras.random.uniform(ops.shape(total), seed=seed) * total
    uniform = ops.minimum(uniform, total * (1.0 - 2.0**-23))
    # The first token whose running sum exceeds the draw. A token of
    # probability 0 adds nothing to the sum and is never the first. Capped:
    # NaN logits (a diverged run, which `StopOnNonFiniteLoss` stops) must
    # still give ids inside the vocabulary.
    sample = _count_at_most(cumulative, uniform)
    return ops.minimum(sample, cumulative.shape[-1] - 1)


def scatter_at_positions(token_ids, mask_positions, mask_weights, updates):
    """`token_ids` with `updates` written at the used mask slots.

    Args:
        token_ids: int tensor `(batch, sequence_length)`.
        mask_positions: int tensor `(batch, slots)`, distinct per row.
        mask_weights: tensor `(batch, slots)`, nonzero at the used slots.
        updates: int tensor `(batch, slots)`, e.g. generator samples.

    Returns:
        int32 tensor `(batch, sequence_length)`.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import scatter_at_positions

    scatter_at_positions(
        np.array([[5, 6, 7]]), np.array([[2, 0]]), np.array([[1.0, 0.0]]),
        np.array([[9, 9]]),
    )  # [[5, 6, 9]]
    ```
    """
    token_ids = ops.cast(token_ids, "int32")
    one_hot = _slot_one_hot(mask_positions, mask_weights, token_ids.shape[1])
    # The positions are distinct, so the sum over slots picks one update.
    dense = ops.sum(
        one_hot * ops.expand_dims(ops.cast(updates, "int32"), -1), axis=1
    )
    return ops.where(ops.sum(one_hot, axis=1) > 0, dense, token_ids)


def replaced_labels(corrupted_token_ids, token_ids):
    """The discriminator's labels: 1 where the token changed.

    A sample equal to the original counts as original.

    Example:
    ```python
    from keras_electra.pretraining.objectives import replaced_labels

    replaced_labels([[5, 9, 7]], [[5, 6, 7]])  # [[0, 1, 0]]
    ```
    """
    return ops.cast(ops.not_equal(corrupted_token_ids, token_ids), "int32")


def _weighted_mean(values, weights):
    return ops.sum(values * weights) / (ops.sum(weights) + _EPSILON)


def rtd_loss(logits, replaced, weights):
    """Replaced-token detection: weighted mean binary cross-entropy.

    Args:
        logits: float tensor `(batch, sequence_length)`, positive for
            "replaced".
        replaced: int tensor of 0/1 labels, the same shape.
        weights: float tensor, the same shape: the tokens that count.

    Returns:
        `(loss, correct)`: a scalar, and a bool tensor, whether
        `sigmoid(logits) > 0.5` matches the label.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import rtd_loss

    loss, correct = rtd_loss(
        np.array([[2.0, -1.0]], "float32"),
        np.array([[1, 1]]),
        np.array([[1.0, 1.0]], "float32"),
    )
    ```
    """
    losses = ops.binary_crossentropy(
        ops.cast(replaced, "float32"), logits, from_logits=True
    )
    predicted = ops.cast(ops.sigmoid(logits) > 0.5, "int32")
    return _weighted_mean(losses, weights), ops.equal(predicted, replaced)


def masked_lm_loss(logits, targets, weights):
    """Weighted mean cross-entropy of the targets under softmax(logits).

    Args:
        logits: float tensor `(batch, positions, vocab_size)`.
        targets: int tensor `(batch, positions)`.
        weights: float tensor `(batch, positions)`: the positions that count.

    Returns:
        `(loss, correct)`: a scalar, and a bool tensor, whether the argmax
        is the target.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import masked_lm_loss

    loss, correct = masked_lm_loss(
        np.zeros((1, 2, 4), "float32"), np.array([[1, 3]]),
        np.array([[1.0, 0.0]], "float32"),
    )  # loss log(4)
    ```
    """
    logits = ops.convert_to_tensor(logits)
    targets = ops.cast(targets, "int32")
    losses = _softmax_cross_entropy(logits, targets)
    correct = ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets)
    return _weighted_mean(losses, weights), correct


def copy_mechanism_loss(logits, targets, weights, input_ids, gate_logits):
    """All-Tokens MLM: -log p(target) under the copy mixture, and accuracy.

    `p = D * onehot(input) + (1 - D) * softmax(logits)` with the copy
    probability `D = sigmoid(-gate_logits)` (the RTD head's logit is positive
    for "replaced", so `D` is P(original)). Computed in log space.

    Args:
        logits: float tensor `(batch, sequence_length, vocab_size)`.
        targets: int tensor `(batch, sequence_length)`, the original tokens.
        weights: float tensor `(batch, sequence_length)`.
        input_ids: int tensor `(batch, sequence_length)`, the tokens the
            encoder read.
        gate_logits: float tensor `(batch, sequence_length)`, the RTD head's.

    Returns:
        `(loss, correct)`: a scalar, and a bool tensor, whether the
        mixture's most likely token is the target.

    Example:
    ```python
    import numpy as np
    from keras_electra.pretraining.objectives import copy_mechanism_loss

    loss, correct = copy_mechanism_loss(
        np.zeros((1, 2, 4), "float32"), np.array([[1, 2]]),
        np.ones((1, 2), "float32"), np.array([[1, 3]]),
        np.zeros((1, 2), "float32"),
    )
    ```
    """
    input_ids = ops.cast(input_ids, "int32")
    targets = ops.cast(targets, "int32")
    log_q = ops.log_softmax(logits, axis=-1)
    log_q_target = ops.take_along_axis(
        log_q, ops.expand_dims(targets, -1), axis=-1
    )[..., 0]
    log_q_input = ops.take_along_axis(
        log_q, ops.expand_dims(input_ids, -1), axis=-1
    )[..., 0]
    log_copy = ops.log_sigmoid(-gate_logits)  # log D
    log_generate = ops.log_sigmoid(gate_logits)  # log (1 - D)
    # p(input) = D + (1 - D) q(input); any other token k: (1 - D) q(k).
    log_p_input = ops.logaddexp(log_copy, log_generate + log_q_input)
    log_p_target = ops.where(
        ops.equal(targets, input_ids),
        log_p_input,
        log_generate + log_q_target,
    )
    loss = -_weighted_mean(log_p_target, weights)
    # The mixture's mode: the input token or the softmax's best token.
    best_generated = ops.cast(ops.argmax(logits, axis=-1), "int32")
    log_p_best_generated = log_generate + ops.max(log_q, axis=-1)
    prediction = ops.where(
        log_p_input >= log_p_best_generated, input_ids, best_generated
    )
    return loss, ops.equal(prediction, targets)


# === Backend kernels ===
# The two passes over the generator's vocabulary logits, `(batch, slots,
# vocab_size)`, are the largest elementwise work of the step. Each backend
# gets its fastest exact form (benchmarks/RESULTS.md, "The generator's
# vocabulary logits").


def _softmax_cross_entropy(logits, targets):
    """`-log softmax(logits)[targets]` over the last axis."""
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        vocab_size = logits.shape[-1]
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, vocab_size),
            targets.reshape(-1).long(),
            reduction="none",
        ).reshape(targets.shape)
    if backend == "tensorflow":
        # One fused kernel (tf.nn.sparse_softmax_cross_entropy_with_logits).
        return keras.losses.sparse_categorical_crossentropy(
            targets, logits, from_logits=True
        )
    # XLA fuses these into two passes; Keras' form builds a one-hot table.
    target_logits = ops.take_along_axis(
        logits, ops.expand_dims(targets, -1), axis=-1
    )[..., 0]
    return ops.logsumexp(logits, axis=-1) - target_logits


def _count_at_most(sorted_values, values):
    """int32 `values.shape[:-1]`: how many of `sorted_values` (ascending on
    the last axis) are at most `values` (`(..., 1)`)."""
    sorted_values = ops.convert_to_tensor(sorted_values)
    values = ops.convert_to_tensor(values, sorted_values.dtype)
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        count = torch.searchsorted(
            sorted_values, values, right=True, out_int32=True
        )
        return count[..., 0]
    if backend == "tensorflow":
        import tensorflow as tf

        count = tf.searchsorted(
            sorted_values, values, side="right", out_type=tf.int32
        )
        return count[..., 0]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        # jnp.searchsorted takes one sorted row: mapped over the rows.
        rows = ops.reshape(sorted_values, (-1, sorted_values.shape[-1]))
        count = jax.vmap(
            lambda row, value: jnp.searchsorted(row, value, side="right")
        )(rows, ops.reshape(values, (-1,)))
        return ops.reshape(ops.cast(count, "int32"), ops.shape(values)[:-1])
    # Other backends (Keras' numpy backend): one comparison per entry.
    return ops.sum(ops.cast(sorted_values <= values, "int32"), axis=-1)
