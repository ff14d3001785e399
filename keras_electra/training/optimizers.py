"""ELECTRA's fine-tuning optimizer: layer-wise learning-rate decay + schedule.

- `layer_depths(model)`: the depth of every variable, as ELECTRA counts it.
- `layerwise_decay(optimizer, model, decay)`: any Keras optimizer, with each
  variable's learning rate (and weight decay) scaled by `decay ** exponent`.
- `WarmupLinearDecay`: linear warmup, then linear decay to zero.
- `electra_finetuning_optimizer(...)`: AdamW with all of the above.
- `FINETUNING_HYPERPARAMETERS`: the paper's fine-tuning values (Table 7).
"""

import contextlib
import warnings

import keras

from keras_electra.models.electra_backbone import EMBEDDING_LAYER_NAMES
from keras_electra.models.electra_optimizer import NO_WEIGHT_DECAY_NAMES  # noqa: F401
from keras_electra.models.electra_optimizer import electra_adamw
from keras_electra.utils import keras_compat

# ELECTRA's GLUE fine-tuning hyperparameters, from the paper (Clark et al.,
# 2020, "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
# Generators"), Appendix, Table 7. Note: the paper lists weight decay 0, while
# the released code (`configure_finetuning.py`) defaults to
# `weight_decay_rate=0.01`; `electra_finetuning_optimizer` follows the code.
FINETUNING_HYPERPARAMETERS = {
    "learning_rate": {"small": 3e-4, "base": 1e-4, "large": 5e-5},
    "layer_decay": {"small": 0.8, "base": 0.8, "large": 0.9},
    "learning_rate_decay": "linear",
    "warmup_fraction": 0.1,
    "weight_decay": 0.0,
    "batch_size": 32,
    # 10 epochs for RTE and STS-B, 2 for SQuAD, 3 for the other tasks.
    "epochs": {"default": 3, "rte": 10, "stsb": 10, "squad": 2},
    "adam_epsilon": 1e-6,
    "adam_beta_1": 0.9,
    "adam_beta_2": 0.999,
    "dropout": 0.1,
    "attention_dropout": 0.1,
}


def _find_backbone(model):
    if hasattr(model, "transformer_layers"):
        return model
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "transformer_layers"):
        return backbone
    raise ValueError(
        "Expected an ELECTRA backbone (with `transformer_layers`) or a task "
        f"model with such a `.backbone`; got {type(model).__name__}."
    )


def _path(variable):
    return getattr(variable, "path", None) or variable.name


def layer_depths(model):
    """The depth of each of `model`'s variables for layer-wise decay.

    Depths follow the original ELECTRA (`_get_layer_lrs`): 0 for the
    embeddings (token, position and segment embeddings, the embedding
    LayerNorm and `embeddings_projection`), `i + 1` for `transformer_layer_i`
    and `L + 2` for everything else, i.e. the task head and the backbone's
    `pooled_dense` (the original's pooler matches no key, so it trains at the
    task's rate). Depth `L + 1` is unused.

    Args:
        model: an `ElectraBackbone` (or keras-hub backbone with the same layer
            names), or a task model whose `.backbone` is one.

    Returns:
        dict mapping `variable.path` to its depth, for all of `model.weights`.

    Example:
    ```python
    import keras_electra

    backbone = keras_electra.ElectraBackbone(
        vocab_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=16, intermediate_dim=32, max_sequence_length=16,
    )
    depths = keras_electra.layer_depths(backbone)
    depths["token_embedding/embeddings"]  # 0
    depths["transformer_layer_1/feedforward_output_dense/kernel"]  # 2
    depths["pooled_dense/kernel"]  # 4
    ```
    """
    backbone = _find_backbone(model)
    num_layers = len(backbone.transformer_layers)
    depth_by_id = {}
    for name in EMBEDDING_LAYER_NAMES:
        layer = getattr(backbone, name, None)
        if layer is not None:
            for variable in layer.weights:
                depth_by_id[id(variable)] = 0
    for index, layer in enumerate(backbone.transformer_layers):
        for variable in layer.weights:
            depth_by_id[id(variable)] = index + 1
    depths = {}
    for variable in model.weights:
        path = _path(variable)
        depth = depth_by_id.get(id(variable), num_layers + 2)
        if depths.get(path, depth) != depth:
            raise ValueError(
                f"Two variables share the path {path!r} but sit at different "
                "depths; rename one of their layers."
            )
        depths[path] = depth
    return depths


def layerwise_decay(optimizer, model, decay, contiguous_exponents=False):
    """`optimizer` with ELECTRA's layer-wise learning-rate decay.

    A variable at depth `d` (see `layer_depths`) of a backbone with `L`
    Transformer layers trains with learning rate `lr * decay ** e`:

    - `contiguous_exponents=False` (the original ELECTRA): `e = L + 2 - d`.
      Head and pooler get `decay ** 0`, the top Transformer layer
      `decay ** 2` (depth `L + 1` is skipped, a quirk of the original), layer
      `i` `decay ** (L + 1 - i)`, the embeddings `decay ** (L + 2)`.
    - `contiguous_exponents=True`: `e = L + 1 - min(d, L + 1)`. Head and
      pooler `decay ** 0`, the top layer `decay ** 1`, layer `i`
      `decay ** (L - i)`, the embeddings `decay ** (L + 1)`.

    The multiplier scales the whole update of the variable, weight decay
    included (as in the original, whose AdamW applies the decay inside the
    per-layer update). Gradient clipping (`clipnorm`, `global_clipnorm`,
    `clipvalue`) still acts on the raw gradients of all variables, and
    gradient accumulation, EMA and loss scaling work as usual.

    Works on TensorFlow, JAX and PyTorch, jit-compiled or not, with every
    Keras optimizer that updates variables through `update_step` (all
    built-in ones, and PyTorch's fused versions of them): it returns an
    instance of a generated subclass of `optimizer`'s class (still e.g. an
    `isinstance` of `keras.optimizers.AdamW`) that runs each variable's update
    at its own learning rate. The multipliers are kept by variable path in
    `optimizer.lr_multipliers` and survive `get_config` / `from_config`,
    `keras.optimizers.serialize` and model saving; variables whose path is
    not in it train at multiplier 1.

    Args:
        optimizer: a Keras optimizer (or its string name) that has not been
            built yet; its configuration (and weight-decay exclusions) are
            copied, the instance itself is not modified.
        model: an ELECTRA backbone or a task model with a `.backbone`.
        decay: float in `(0, 1]`. ELECTRA uses 0.8 for small and base, 0.9
            for large.
        contiguous_exponents: bool, see above.

    Returns:
        A new optimizer.

    Example:
    ```python
    import keras
    import keras_electra

    backbone = keras_electra.ElectraBackbone(
        vocab_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=16, intermediate_dim=32, max_sequence_length=16,
    )
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.Adam(1e-4), backbone, decay=0.8
    )
    top_layer = "transformer_layer_1/feedforward_output_dense/kernel"
    optimizer.lr_multipliers[top_layer]  # 0.64 (= 0.8 ** 2)
    ```
    """
    if not 0 < decay <= 1:
        raise ValueError(f"`decay` must be in (0, 1], got {decay}.")
    depths = layer_depths(model)
    num_layers = len(_find_backbone(model).transformer_layers)
    top = num_layers + 1 if contiguous_exponents else num_layers + 2
    multipliers = {
        path: float(decay ** (top - min(depth, top)))
        for path, depth in depths.items()
    }
    return _with_lr_multipliers(keras.optimizers.get(optimizer), multipliers)


def _with_lr_multipliers(optimizer, multipliers):
    """A copy of `optimizer` whose class applies per-variable multipliers."""
    if isinstance(optimizer, LayerwiseDecayMixin):
        raise ValueError(
            "This optimizer already applies layer-wise decay; pass the plain "
            "optimizer instead."
        )
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(
            _with_lr_multipliers(optimizer.inner_optimizer, multipliers),
            initial_scale=optimizer.initial_scale,
            dynamic_growth_steps=optimizer.dynamic_growth_steps,
            name=optimizer.name,
        )
    if optimizer.built:
        raise ValueError(
            "Pass an optimizer that has not been built (used) yet: its state "
            "cannot be carried over."
        )
    config = optimizer.get_config()
    if not isinstance(optimizer._learning_rate, keras.Variable):
        # A schedule or callable: reuse the object rather than a copy.
        config["learning_rate"] = optimizer._learning_rate
    pattern = getattr(optimizer, "_exclude_from_weight_decay_pattern", None)
    new = _layerwise_class(type(optimizer))(
        **config,
        lr_multipliers=multipliers,
        weight_decay_exclusions=[pattern.pattern] if pattern else None,
    )
    excluded_ids = getattr(optimizer, "_exclude_from_weight_decay", None)
    if excluded_ids:
        # Variables excluded by identity (not serializable, as in Keras).
        new._exclude_from_weight_decay = set(excluded_ids)
        new._exclude_from_weight_decay_cache = {}
    return new


_CLASSES = {}


def _torch_update_mode(optimizer_class):
    """How to scale the update of a PyTorch "parallel" optimizer class.

    Keras' PyTorch backend replaces SGD, Adam, ... with subclasses that update
    all variables at once in `_parallel_update_step`, with one learning rate.
    For those whose fused step has no optimizer-wide state, the variables are
    updated in one fused call per multiplier ("grouped"). Others (Nadam, whose
    step also advances its `_u_product`) take the per-variable
    `update_step` path of their generic class ("per_variable").
    Returns `None` for every class that is not such a parallel optimizer.
    """
    if keras.config.backend() != "torch":
        return None
    if not issubclass(
        optimizer_class, keras_compat.torch_parallel_optimizer_class()
    ):
        return None
    stateless_fused = keras_compat.torch_stateless_fused_optimizer_classes()
    return "grouped" if optimizer_class in stateless_fused else "per_variable"


def _layerwise_class(optimizer_class):
    """The subclass of `optimizer_class` that applies the multipliers.

    Subclassing the optimizer's concrete class (on PyTorch e.g. the fused
    `torch_adam.Adam`) keeps its backend-specific update path.
    """
    if optimizer_class not in _CLASSES:
        cls = type(
            f"LayerwiseDecay{optimizer_class.__name__}",
            (LayerwiseDecayMixin, optimizer_class),
            {
                "__module__": __name__,
                "_torch_update_mode": _torch_update_mode(optimizer_class),
            },
        )
        # Every generated class serializes under one registered name, which
        # resolves to `LayerwiseDecayMixin`; its `from_config` rebuilds the
        # right class from the config's `base_optimizer`.
        register = keras.saving.register_keras_serializable(
            "keras_electra", "LayerwiseDecay"
        )
        register(cls)
        register(LayerwiseDecayMixin)
        _CLASSES[optimizer_class] = cls
    return _CLASSES[optimizer_class]


def _public_class(optimizer_class):
    """The first class of the MRO that is not backend-specific.

    On PyTorch, `keras.optimizers.Adam(...)` is a `torch_adam.Adam`; saving
    the class as `keras.optimizers.Adam` keeps the config backend-neutral.
    """
    for cls in optimizer_class.__mro__:
        if issubclass(cls, LayerwiseDecayMixin):
            continue
        if not keras_compat.is_backend_specific_class(cls):
            return cls
    return optimizer_class


@keras.saving.register_keras_serializable("keras_electra", "LayerwiseDecay")
class LayerwiseDecayMixin:
    """Scales each variable's learning rate and weight decay by a multiplier.

    Mixed into a subclass of a concrete Keras optimizer class by
    `layerwise_decay`; not meant to be used directly. Hooks:

    - `update_step(gradient, variable, learning_rate)`, the per-variable
      update, runs with `learning_rate * multiplier`. Keras reaches it from
      `_backend_update_step` on every backend: the generic loop (JAX,
      including `stateless_apply`; any non-fused optimizer), and TensorFlow's
      `_distributed_tf_update_step`. Optimizer-wide work done once per step in
      `_backend_update_step` (Nadam's `_u_product`) stays once per step.
    - PyTorch's fused optimizers skip `update_step` (`_parallel_update_step`
      updates all variables with one learning rate): see `_torch_update_mode`.
    - `_apply_weight_decay` runs once per group of equal multiplier while the
      optimizer's current learning rate reads as `lr * multiplier`.

    All run inside `_backend_apply_gradients`, after gradient clipping and in
    gradient accumulation's update branch.
    """

    _torch_update_mode = None

    def __init__(
        self,
        *args,
        lr_multipliers=None,
        weight_decay_exclusions=None,
        base_optimizer=None,  # Part of the config; the class implies it.
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {
            str(path): float(value)
            for path, value in (lr_multipliers or {}).items()
        }
        object.__setattr__(self, "_lr_scale", None)
        object.__setattr__(self, "_multipliers_by_index", ())
        if weight_decay_exclusions:
            self.exclude_from_weight_decay(var_names=weight_decay_exclusions)

    def lr_multiplier(self, variable):
        """The learning-rate multiplier of `variable` (1 if not listed)."""
        return self.lr_multipliers.get(_path(variable), 1.0)

    def build(self, variables):
        super().build(variables)
        # By position in the optimizer's variable list: `update_step` may get
        # the backend variable (a `tf.Variable` on TensorFlow), which has no
        # Keras path but has an index.
        variables = self._trainable_variables
        multipliers = tuple(self.lr_multiplier(v) for v in variables)
        object.__setattr__(self, "_multipliers_by_index", multipliers)
        if self.lr_multipliers and not any(
            _path(v) in self.lr_multipliers for v in variables
        ):
            warnings.warn(
                "None of the variables this optimizer is built for has a "
                "layer-wise learning-rate multiplier: was it made for "
                "another model?",
                stacklevel=2,
            )

    def _multiplier_at(self, variable):
        return self._multipliers_by_index[self._get_variable_index(variable)]

    @contextlib.contextmanager
    def _scaled_learning_rate(self, multiplier):
        # Plain attribute write: no tracking, trace-time only under jit.
        object.__setattr__(self, "_lr_scale", multiplier)
        try:
            yield
        finally:
            object.__setattr__(self, "_lr_scale", None)

    def _get_current_learning_rate(self):
        learning_rate = super()._get_current_learning_rate()
        scale = getattr(self, "_lr_scale", None)
        if scale is None or scale == 1.0:
            return learning_rate
        return learning_rate * scale

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_at(variable)
        if multiplier == 1.0:
            return super().update_step(gradient, variable, learning_rate)
        # The scaled context also covers an `update_step` that reads
        # `self.learning_rate` rather than its argument.
        with self._scaled_learning_rate(multiplier):
            return super().update_step(
                gradient, variable, learning_rate * multiplier
            )

    def _groups(self, variables, *aligned):
        """`{multiplier: [variables, *aligned lists]}`, input order kept."""
        groups = {}
        for index, variable in enumerate(variables):
            entry = groups.setdefault(
                self._multiplier_at(variable),
                [[] for _ in range(len(aligned) + 1)],
            )
            entry[0].append(variable)
            for values, column in zip(aligned, entry[1:]):
                column.append(values[index])
        return groups

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self._torch_update_mode == "grouped":
            groups = self._groups(trainable_variables, grads)
            for multiplier, (variables, group_grads) in groups.items():
                scaled = learning_rate
                if multiplier != 1.0:
                    scaled = learning_rate * multiplier
                with self._scaled_learning_rate(multiplier):
                    super()._backend_update_step(group_grads, variables, scaled)
        elif self._torch_update_mode == "per_variable":
            import torch

            # Skip the fused step: continue the MRO after it, down to the
            # generic class's `_backend_update_step` and its `update_step`s.
            parallel = keras_compat.torch_parallel_optimizer_class()
            with torch.no_grad():
                super(parallel, self)._backend_update_step(
                    grads, trainable_variables, learning_rate
                )
        else:
            super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )

    def _apply_weight_decay(self, variables):
        for multiplier, (group,) in self._groups(variables).items():
            group = [v for v in group if self._use_weight_decay(v)]
            if group:
                with self._scaled_learning_rate(multiplier):
                    super()._apply_weight_decay(group)

    def get_config(self):
        config = super().get_config()
        public = _public_class(type(self))
        if getattr(keras.optimizers, public.__name__, None) is public:
            base = {"module": "keras.optimizers", "registered_name": None}
        else:
            base = {
                "module": public.__module__,
                "registered_name": keras.saving.get_registered_name(public),
            }
        pattern = getattr(self, "_exclude_from_weight_decay_pattern", None)
        config.update(
            {
                "lr_multipliers": dict(self.lr_multipliers),
                "weight_decay_exclusions": (
                    [pattern.pattern] if pattern else None
                ),
                "base_optimizer": {**base, "class_name": public.__name__},
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        multipliers = config.pop("lr_multipliers", None)
        exclusions = config.pop("weight_decay_exclusions", None)
        base = config.pop("base_optimizer")
        optimizer = keras.saving.deserialize_keras_object(
            {**base, "config": config}, custom_objects=custom_objects
        )
        if exclusions:
            optimizer.exclude_from_weight_decay(var_names=exclusions)
        return _with_lr_multipliers(optimizer, multipliers or {})


@keras.saving.register_keras_serializable(package="keras_electra")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to a peak, then linear decay to 0.

    `lr(step) = peak * step / warmup_steps` for `step < warmup_steps`, then
    `peak * (total_steps - step) / (total_steps - warmup_steps)`, and 0 from
    `total_steps` on. Keras evaluates the schedule at the optimizer's
    iteration count before each update, so the first update uses `lr(0) = 0`
    (as in the original ELECTRA). With gradient accumulation the iteration
    count is per micro-batch: count `total_steps` in micro-batches.

    The original ELECTRA code multiplies the two ramps instead
    (`peak * min(1, step / warmup) * (1 - step / total)`), which peaks a
    little lower, at `peak * (1 - warmup_fraction)`.

    Args:
        peak_learning_rate: float. The learning rate at the end of warmup.
        total_steps: int. Optimizer steps of the whole run.
        warmup_fraction: float. Fraction of `total_steps` spent warming up;
            `warmup_steps = int(total_steps * warmup_fraction)`.
        warmup_steps: int or `None`. If set, used instead of
            `warmup_fraction`.

    Example:
    ```python
    import keras_electra

    schedule = keras_electra.WarmupLinearDecay(1e-4, total_steps=1000)
    float(schedule(100))  # 1e-4, the peak, after 10% warmup
    float(schedule(550))  # 5e-5
    ```
    """

    def __init__(
        self,
        peak_learning_rate,
        total_steps,
        warmup_fraction=0.1,
        warmup_steps=None,
        name="warmup_linear_decay",
    ):
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1, got {total_steps}.")
        if warmup_steps is None:
            if not 0 <= warmup_fraction <= 1:
                raise ValueError(
                    f"`warmup_fraction` must be in [0, 1], got "
                    f"{warmup_fraction}."
                )
            warmup_steps = int(total_steps * warmup_fraction)
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"`warmup_steps` must be in [0, total_steps], got "
                f"{warmup_steps}."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.name = name

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        remaining = self.total_steps - self.warmup_steps
        if remaining > 0:
            fraction = (self.total_steps - step) / remaining
        else:  # All warmup: peak at `total_steps`, then 0.
            fraction = keras.ops.where(step > self.total_steps, 0.0, 1.0)
        if self.warmup_steps > 0:
            fraction = keras.ops.minimum(step / self.warmup_steps, fraction)
        return self.peak_learning_rate * keras.ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }


def electra_finetuning_optimizer(
    model,
    learning_rate,
    total_steps,
    layer_decay=0.8,
    weight_decay=0.01,
    warmup_fraction=0.1,
):
    """ELECTRA's fine-tuning optimizer for `model`.

    AdamW (`beta_1=0.9`, `beta_2=0.999`, `epsilon=1e-6`) with decoupled weight
    decay that skips LayerNorm scales/offsets and biases, a
    `WarmupLinearDecay` schedule peaking at `learning_rate`, and
    `layerwise_decay(..., decay=layer_decay)` (original exponents). Defaults
    follow the released code (`weight_decay_rate=0.01`); see
    `FINETUNING_HYPERPARAMETERS` for the paper's values per model size.

    Args:
        model: an ELECTRA backbone or a task model with a `.backbone`.
        learning_rate: float. Peak learning rate (of the head).
        total_steps: int. Optimizer steps of the whole run (e.g.
            `epochs * steps_per_epoch`).
        layer_decay: float. 0.8 for small/base, 0.9 for large.
        weight_decay: float. Decoupled weight decay (0 disables it).
        warmup_fraction: float. Fraction of `total_steps` to warm up.

    Example:
    ```python
    import keras_electra

    backbone = keras_electra.ElectraBackbone(
        vocab_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=16, intermediate_dim=32, max_sequence_length=16,
    )
    model = keras_electra.ElectraDiscriminator(backbone)
    hparams = keras_electra.FINETUNING_HYPERPARAMETERS
    optimizer = keras_electra.electra_finetuning_optimizer(
        model,
        learning_rate=hparams["learning_rate"]["small"],
        total_steps=1000,
        layer_decay=hparams["layer_decay"]["small"],
    )
    model.compile(optimizer=optimizer)
    ```
    """
    optimizer = electra_adamw(
        WarmupLinearDecay(
            learning_rate, total_steps, warmup_fraction=warmup_fraction
        ),
        weight_decay=weight_decay,
    )
    return layerwise_decay(optimizer, model, decay=layer_decay)


def pretraining_optimizer(
    learning_rate=5e-4,
    total_steps=None,
    warmup_steps=10_000,
    weight_decay=0.01,
    clip_norm=1.0,
):
    """The optimizer of ELECTRA pre-training, as the paper sets it up.

    `electra_adamw` with gradient clipping at `clip_norm`; with
    `total_steps`, the learning rate warms up linearly over
    `min(warmup_steps, total_steps // 10)` steps and then decays linearly to
    zero (`WarmupLinearDecay`), else it stays at `learning_rate`. The one
    place that builds it: `ElectraPretrainer.compile()`, `recipes/pretrain.py`
    and the benchmarks call this.

    Example:
    ```python
    import keras_electra
    from keras_electra.training.optimizers import pretraining_optimizer

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=200
    )
    pretrainer.compile(optimizer=pretraining_optimizer(1e-3, total_steps=100))
    ```
    """
    if total_steps is not None:
        learning_rate = WarmupLinearDecay(
            learning_rate,
            total_steps=total_steps,
            warmup_steps=min(warmup_steps, total_steps // 10),
        )
    return electra_adamw(
        learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm
    )
