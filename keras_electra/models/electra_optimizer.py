"""The AdamW that every keras_electra model's `compile()` uses by default."""

import keras

# Variables that `electra_finetuning_optimizer` does not weight-decay: the
# LayerNorm scales and offsets and all biases (the original excludes
# "LayerNorm", "layer_norm" and "bias"). Matched against `variable.name`.
NO_WEIGHT_DECAY_NAMES = ("^gamma$", "^beta$", "^bias$")


def electra_adamw(learning_rate, weight_decay=0.01, **kwargs):
    """AdamW as ELECTRA uses it: betas 0.9/0.999, epsilon 1e-6, and no
    weight decay on LayerNorm scales and offsets or on biases.

    The default optimizer of every keras_electra model's `compile()`.
    `**kwargs` go to `keras.optimizers.AdamW` (e.g. `global_clipnorm`).
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        **kwargs,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY_NAMES))
    return optimizer
