"""The AdamW that every keras_electra model's `compile()` uses by default."""

import keras

# Variables that `electra_finetuning_optimizer` does not weight-decay: the
# LayerNorm scales and offsets and all biases (the original excludes
# "LayerNorm", "layer_norm" and "bias"). Matched against `variable.name`.
NO_WEIGHT_DECAY_NAMES = ("^gamma$", "^beta$", "^bias$")


@keras.saving.register_keras_serializable(package="keras_electra")
class FusedAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose update is one fused op on TensorFlow.

    Keras' AdamW writes each variable's Adam update as a dozen TensorFlow
    ops and recomputes the step's scalars (`beta ** step`, a scheduled
    learning rate) for every variable. On TensorFlow this class hands each
    update to the `ResourceApplyAdam` kernel, which computes the same
    formula in one op, and computes the scalars once per step. The graph
    that the first `fit` step traces and optimises shrinks to about half:
    for ELECTRA-Small's pretrainer from 35,544 to 19,302 ops, and the first
    step from 33 to 17 s (`benchmarks/first_step.py`); later steps are
    unchanged. Hyperparameters, variables and config are AdamW's.

    It also decides which variables to weight-decay on the Keras variables:
    Keras' TensorFlow path matches `exclude_from_weight_decay(var_names=...)`
    against TensorFlow's names ("bias:0", which `"^bias$"` misses) and
    decays every variable.

    The fused path covers float32 variables without `amsgrad` on
    TensorFlow; everything else takes Keras' own update. On JAX, XLA fuses
    the update already, and on PyTorch `keras.optimizers.AdamW` is a fused
    multi-tensor step: `electra_adamw` returns that there, and a config
    saved on TensorFlow loads as `keras.optimizers.AdamW` on those backends.

    Example:
    ```python
    import keras
    from keras_electra.models.electra_optimizer import FusedAdamW

    optimizer = FusedAdamW(learning_rate=1e-3, weight_decay=0.01)
    variable = keras.Variable([1.0, 2.0])
    optimizer.apply([keras.ops.convert_to_tensor([0.5, -0.5])], [variable])
    ```
    """

    # The step's scalars while `_distributed_tf_update_step` runs.
    _step_scalars = None

    def _fuses(self, variable):
        return (
            keras.config.backend() == "tensorflow"
            and not self.amsgrad
            and keras.backend.standardize_dtype(variable.dtype) == "float32"
        )

    def update_step(self, gradient, variable, learning_rate):
        if not self._fuses(variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        scalars = self._step_scalars or self._adam_scalars()
        index = self._get_variable_index(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=_tf_variable(variable).handle,
            m=_tf_variable(self._momentums[index]).handle,
            v=_tf_variable(self._velocities[index]).handle,
            lr=tf.cast(learning_rate, "float32"),
            grad=tf.cast(tf.convert_to_tensor(gradient), "float32"),
            **scalars,
        )

    def _adam_scalars(self):
        import tensorflow as tf

        step = tf.cast(self.iterations + 1, "float32")
        beta_1 = tf.constant(self.beta_1, "float32")
        beta_2 = tf.constant(self.beta_2, "float32")
        return {
            "beta1_power": tf.pow(beta_1, step),
            "beta2_power": tf.pow(beta_2, step),
            "beta1": beta_1,
            "beta2": beta_2,
            "epsilon": tf.constant(self.epsilon, "float32"),
        }

    def _distributed_tf_update_step(
        self, distribution, grads_and_vars, learning_rate
    ):
        # Runs once per step (in cross-replica context): one set of the
        # step's scalars for every variable's update.
        object.__setattr__(self, "_step_scalars", self._adam_scalars())
        try:
            return super()._distributed_tf_update_step(
                distribution, grads_and_vars, learning_rate
            )
        finally:
            object.__setattr__(self, "_step_scalars", None)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        # On the Keras variables (see the class docstring); Keras caches the
        # answers, so its own path below agrees.
        decayed = [v for v in variables if self._use_weight_decay(v)]
        if not decayed:
            return
        if not all(self._fuses(v) for v in decayed):
            return super()._apply_weight_decay(decayed)
        import tensorflow as tf

        # Once per step; Keras reads the scheduled rate once per variable.
        rate = tf.cast(self.learning_rate * self.weight_decay, "float32")

        def decay(strategy, variables, rate):
            for variable in variables:
                strategy.extended.update(
                    _tf_variable(variable),
                    lambda v, rate: v.assign_sub(v * rate),
                    args=(rate,),
                    group=False,
                )

        tf.__internal__.distribute.interim.maybe_merge_call(
            decay, self._distribution_strategy, decayed, rate
        )

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if cls is FusedAdamW and keras.config.backend() != "tensorflow":
            return keras.optimizers.AdamW.from_config(config, custom_objects)
        return super().from_config(config, custom_objects)


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def electra_adamw(learning_rate, weight_decay=0.01, **kwargs):
    """AdamW as ELECTRA uses it: betas 0.9/0.999, epsilon 1e-6, and no
    weight decay on LayerNorm scales and offsets or on biases.

    The default optimizer of every keras_electra model's `compile()`: a
    `FusedAdamW` on TensorFlow, `keras.optimizers.AdamW` elsewhere. `**kwargs`
    go to `keras.optimizers.AdamW` (e.g. `global_clipnorm`).
    """
    adamw = FusedAdamW
    if keras.config.backend() != "tensorflow":
        adamw = keras.optimizers.AdamW
    optimizer = adamw(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        **kwargs,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY_NAMES))
    return optimizer
