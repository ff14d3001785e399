"""The pre-training method's pure functions against small NumPy references.

With an int seed a draw is the same every call, so a reference can make the
very same draw with `keras.random` and do the rest in NumPy.
"""

import dataclasses

import keras
import numpy as np
import pytest

from keras_electra.pretraining import objectives
from keras_electra.pretraining import pretrainer

SPECIALS = (0, 101, 102, 103)
VOCAB = 160


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def batch(seed=0, batch_size=6, length=20):
    """`[CLS] words [SEP] [PAD]...`, ragged, with a [MASK] and a [SEP]."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(104, VOCAB, size=(batch_size, length))
    padding_mask = np.ones((batch_size, length), "int32")
    for row in range(batch_size):
        real = length - 3 * row
        token_ids[row, 0], token_ids[row, real - 1] = 101, 102
        token_ids[row, real // 2] = 103
        token_ids[row, real:] = 0
        padding_mask[row, real:] = 0
    return token_ids.astype("int32"), padding_mask


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_the_table_is_complete_and_consistent():
    specs = objectives.OBJECTIVE_SPECS
    assert pretrainer.OBJECTIVES == tuple(specs)
    for name, spec in specs.items():
        assert spec.rtd_tokens in (None, "real", "masked"), name
        assert spec.mlm_tokens in (None, "masked", "all"), name
        assert spec.has_rtd_head or spec.has_mlm_head, name
        # The copy mechanism's gate is the RTD head, over every token.
        assert spec.copy_mechanism == (spec.mlm_tokens == "all"), name
        if spec.copy_mechanism:
            assert spec.has_rtd_head and spec.has_generator, name
        assert 0 <= spec.mask_token_rate + spec.random_token_rate <= 1
    assert not specs["mlm"].has_generator
    assert (specs["mlm"].mask_token_rate, specs["mlm"].random_token_rate) == (
        0.8,
        0.1,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs["electra"].rtd_tokens = "masked"


def test_num_mask_slots():
    assert objectives.num_mask_slots(128, 0.15) == 19
    assert objectives.num_mask_slots(24, 0.15) == 3
    with pytest.raises(ValueError, match="too short to mask"):
        objectives.num_mask_slots(5, 0.15)


def test_choose_mask_positions_matches_numpy():
    token_ids, padding_mask = batch()
    rate, seed = 0.3, 7
    positions, weights = objectives.choose_mask_positions(
        token_ids, padding_mask, SPECIALS, rate, seed
    )
    positions, weights = numpy(positions), numpy(weights)
    slots = int((rate + 0.005) * token_ids.shape[1])
    assert positions.shape == weights.shape == (len(token_ids), slots)
    assert positions.dtype == np.int32 and weights.dtype == np.float32
    # The same draw, then NumPy: the highest-scoring candidates.
    scores = numpy(keras.random.uniform(token_ids.shape, seed=seed))
    for row in range(len(token_ids)):
        candidate = (padding_mask[row] > 0) & ~np.isin(token_ids[row], SPECIALS)
        count = int(np.clip(np.round(padding_mask[row].sum() * rate), 1, slots))
        count = min(count, candidate.sum())
        expected = np.argsort(-np.where(candidate, scores[row], -1.0))[:count]
        np.testing.assert_array_equal(weights[row], np.arange(slots) < count)
        np.testing.assert_array_equal(positions[row][:count], expected)


def test_a_seed_generator_gives_fresh_positions_each_call():
    token_ids, padding_mask = batch()
    seed = keras.random.SeedGenerator(3)
    draws = [
        numpy(
            objectives.choose_mask_positions(
                token_ids, padding_mask, SPECIALS, 0.3, seed
            )[0]
        )
        for _ in range(2)
    ]
    assert (draws[0] != draws[1]).any()


def test_mask_of_positions_and_scatter_match_numpy():
    rng = np.random.default_rng(1)
    token_ids = rng.integers(104, VOCAB, size=(3, 8)).astype("int32")
    positions = np.array([[5, 1, 2], [0, 7, 3], [6, 4, 2]], "int32")
    weights = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], "float32")
    updates = rng.integers(0, VOCAB, size=(3, 3)).astype("int32")
    expected_mask = np.zeros((3, 8), bool)
    expected_ids = token_ids.copy()
    for row in range(3):
        used = weights[row] > 0
        expected_mask[row, positions[row][used]] = True
        expected_ids[row, positions[row][used]] = updates[row][used]
    np.testing.assert_array_equal(
        numpy(objectives.mask_of_positions(positions, weights, 8)),
        expected_mask,
    )
    np.testing.assert_array_equal(
        numpy(
            objectives.scatter_at_positions(
                token_ids, positions, weights, updates
            )
        ),
        expected_ids,
    )


def test_mask_tokens_matches_numpy():
    token_ids, _ = batch()
    is_masked = np.random.default_rng(2).random(token_ids.shape) < 0.5
    rates, seed = (0.6, 0.3), 11
    masked = numpy(
        objectives.mask_tokens(token_ids, is_masked, 103, VOCAB, *rates, seed)
    )
    draw = numpy(keras.random.uniform(token_ids.shape, seed=seed))
    random_ids = numpy(
        keras.random.randint(token_ids.shape, 0, VOCAB, seed=seed)
    )
    expected = np.where(
        is_masked & (draw >= rates[0]) & (draw < sum(rates)),
        random_ids,
        token_ids,
    )
    expected = np.where(is_masked & (draw < rates[0]), 103, expected)
    np.testing.assert_array_equal(masked, expected)


def test_mask_tokens_rates():
    token_ids = np.full((100, 50), 150, "int32")
    is_masked = np.ones_like(token_ids, bool)
    masked = numpy(
        objectives.mask_tokens(token_ids, is_masked, 103, VOCAB, 0.8, 0.1, 5)
    )
    assert abs((masked == 103).mean() - 0.8) < 0.02
    # A random token can be the original (1 / VOCAB of them).
    assert abs(((masked != 103) & (masked != 150)).mean() - 0.1) < 0.02
    unmasked = numpy(
        objectives.mask_tokens(token_ids, ~is_masked, 103, VOCAB, 0.8, 0.1, 5)
    )
    np.testing.assert_array_equal(unmasked, token_ids)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_sample_frequencies_follow_the_softmax(temperature):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0], "float32")
    draws = 4000
    samples = numpy(
        objectives.softmax_sample(
            np.tile(logits, (draws, 1)), temperature, seed=17
        )
    )
    assert samples.shape == (draws,) and samples.dtype == np.int32
    expected = np.exp(log_softmax(logits.astype("float64") / temperature))
    observed = np.bincount(samples, minlength=len(logits))
    chi_square = ((observed - draws * expected) ** 2 / (draws * expected)).sum()
    # 4 degrees of freedom: P(chi-square > 18.5) = 0.001.
    assert chi_square < 18.5, (observed / draws, expected)


def test_softmax_sample_keeps_the_leading_shape():
    logits = np.zeros((2, 3, 7), "float32")
    samples = numpy(objectives.softmax_sample(logits, 1.0, seed=0))
    assert samples.shape == (2, 3)
    assert ((0 <= samples) & (samples < 7)).all()


def test_softmax_sample_never_draws_a_token_of_probability_zero():
    # Probability 0 (exp underflows) first, in the middle and last.
    logits = np.array([-1e4, 0.0, -1e4, 1.0, -1e4], "float32")
    samples = numpy(
        objectives.softmax_sample(np.tile(logits, (20000, 1)), 1.0, seed=3)
    )
    assert set(np.unique(samples)) == {1, 3}


def test_softmax_sample_of_nan_logits_stays_inside_the_vocabulary():
    # A diverged run: the samples still index the embedding table, so that
    # the step reaches the loss, which StopOnNonFiniteLoss then stops on.
    logits = np.full((4, 3, 7), np.nan, "float32")
    samples = numpy(objectives.softmax_sample(logits, 1.0, seed=0))
    assert ((0 <= samples) & (samples < 7)).all()


def test_the_sampler_counts_running_sums_as_numpy_searchsorted():
    # Each backend's own kernel (searchsorted) against NumPy's, ties and
    # draws equal to an entry included: the count of entries at most the
    # draw.
    rng = np.random.default_rng(6)
    rows = np.cumsum(rng.integers(0, 3, size=(4, 5, 30)), -1).astype("float32")
    values = rng.integers(-1, 62, size=(4, 5, 1)).astype("float32")
    expected = np.array(
        [
            [np.searchsorted(r, v[0], side="right") for r, v in zip(rr, vv)]
            for rr, vv in zip(rows, values)
        ]
    )
    counts = numpy(objectives._count_at_most(rows, values))
    assert counts.dtype == np.int32
    np.testing.assert_array_equal(counts, expected)


def test_replaced_labels():
    np.testing.assert_array_equal(
        numpy(objectives.replaced_labels([[5, 9, 7, 1]], [[5, 6, 7, 2]])),
        [[0, 1, 0, 1]],
    )


def test_rtd_loss_matches_numpy():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(4, 9)).astype("float32")
    replaced = rng.integers(0, 2, size=(4, 9)).astype("int32")
    weights = (rng.random((4, 9)) < 0.7).astype("float32")
    loss, correct = objectives.rtd_loss(logits, replaced, weights)
    x = logits.astype("float64")
    bce = np.maximum(x, 0) - x * replaced + np.log1p(np.exp(-np.abs(x)))
    expected = (bce * weights).sum() / weights.sum()
    assert float(numpy(loss)) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(numpy(correct), (x > 0) == (replaced == 1))


def test_masked_lm_loss_matches_numpy():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, size=(3, 4, 11)).astype("float32")
    targets = rng.integers(0, 11, size=(3, 4)).astype("int32")
    targets[0, 0] = logits[0, 0].argmax()  # at least one right
    weights = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]], "float32")
    loss, correct = objectives.masked_lm_loss(logits, targets, weights)
    nll = -np.take_along_axis(
        log_softmax(logits.astype("float64")), targets[..., None], -1
    )[..., 0]
    expected = (nll * weights).sum() / weights.sum()
    assert float(numpy(loss)) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(numpy(correct), logits.argmax(-1) == targets)
    # Nothing to count: 0, not NaN.
    empty, _ = objectives.masked_lm_loss(logits, targets, 0 * weights)
    assert float(numpy(empty)) == 0.0


def test_copy_mechanism_loss_matches_numpy():
    rng = np.random.default_rng(5)
    vocab = 6
    logits = rng.normal(0, 2, size=(3, 8, vocab)).astype("float32")
    gate_logits = rng.normal(0, 2, size=(3, 8)).astype("float32")
    targets = rng.integers(0, vocab, size=(3, 8)).astype("int32")
    # Half the inputs are the target (kept tokens), half another token.
    input_ids = np.where(
        rng.random((3, 8)) < 0.5, targets, (targets + 1) % vocab
    ).astype("int32")
    weights = (rng.random((3, 8)) < 0.8).astype("float32")
    loss, correct = objectives.copy_mechanism_loss(
        logits, targets, weights, input_ids, gate_logits
    )
    # The mixture in probability space, in float64.
    softmax = np.exp(log_softmax(logits.astype("float64")))
    copy = 1 / (1 + np.exp(gate_logits.astype("float64")))
    mixture = (1 - copy)[..., None] * softmax
    mixture += copy[..., None] * np.eye(vocab)[input_ids]
    p_target = np.take_along_axis(mixture, targets[..., None], -1)[..., 0]
    expected = -(np.log(p_target) * weights).sum() / weights.sum()
    assert float(numpy(loss)) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(
        numpy(correct), mixture.argmax(-1) == targets
    )
