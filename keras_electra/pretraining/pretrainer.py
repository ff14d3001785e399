"""ELECTRA pre-training: replaced-token detection (Clark et al., ICLR 2020).

Every training step, inside the compiled step and on the device:

1. mask: pick `mask_rate` of the real tokens (never special tokens) and hide
   most of them behind `[MASK]`;
2. generate: the small generator predicts the hidden tokens;
3. sample: draw replacements from its softmax (no gradient);
4. label: a token is "replaced" only where the sample differs from the
   original;
5. discriminate: the discriminator scores every token of the corrupted text;
6. loss: `generator_weight * MLM loss + discriminator_weight * RTD loss`,
   one optimizer over both towers, which share their embeddings (or, with
   `embedding_sharing="gdes"`, the discriminator reads the generator's token
   embeddings plus its own correction, DeBERTa-v3's gradient-disentangled
   sharing).

The same step runs BERT-style masked language modelling and the paper's
ablations (Section 3.2), selected with `objective`; step 1 is shared by all:

- `"electra"`: the above.
- `"electra_15"`: step 6's RTD loss only over the masked positions.
- `"mlm"`: no generator; the encoder itself, with a tied MLM head, predicts
  the original tokens at the masked positions (BERT's 80/10/10 masking).
- `"replace_mlm"`: steps 1-4, then the encoder predicts the original tokens
  at the masked positions, which hold generator samples instead of `[MASK]`.
- `"all_tokens_mlm"`: as `"replace_mlm"`, but the encoder predicts every
  token, through a copy mechanism: a sigmoid gate `D` (the RTD head, trained
  with the ELECTRA loss too) puts `D` on the input token and `1 - D` on the
  MLM softmax.
"""

import json
import os
import warnings

import keras
from keras import ops

from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import GradientDisentangledEmbedding
from keras_electra.models.electra_backbone import disentangle_embeddings
from keras_electra.models.electra_discriminator import ElectraDiscriminator
from keras_electra.models.electra_generator import ElectraGenerator
from keras_electra.pretraining import inspection
from keras_electra.pretraining import objectives
from keras_electra.pretraining import vocabulary
from keras_electra.training import distribution
from keras_electra.training.optimizers import pretraining_optimizer
from keras_electra.utils import preset_loading
from keras_electra.utils.checks import InputChecker
from keras_electra.utils.checks import by_name
from keras_electra.utils.checks import check_sequence_length
from keras_electra.utils.checks import fit_arguments
from keras_electra.utils.checks import input_errors
from keras_electra.utils.checks import untuned_inputs
from keras_electra.utils.keras_compat import build_optimizer
from keras_electra.utils.keras_compat import preset_utils

PRETRAINER_CONFIG_FILE = "pretrainer.json"
GENERATOR_DIR = "generator"
# The MLM head of an encoder that also has the RTD head (all_tokens_mlm).
MLM_HEAD_WEIGHTS_FILE = "mlm_head.weights.h5"
# The names; what each objective trains is `objectives.OBJECTIVE_SPECS`.
OBJECTIVES = tuple(objectives.OBJECTIVE_SPECS)
# How the generator and the discriminator share embeddings.
EMBEDDING_SHARING = ("tied", "gdes", "separate")
# The special tokens the step needs, by the argument that holds their id
# (`"[MASK]"` -> `mask_token_id`): `vocabulary.SPECIAL_TOKENS` but `[UNK]`,
# which only the tokenizer uses.
SPECIAL_TOKENS = {
    f"{token[1:-1].lower()}_token_id": token
    for token in vocabulary.SPECIAL_TOKENS
    if token != "[UNK]"
}


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraPretrainer(keras.Model):
    """ELECTRA generator + discriminator, pre-trained with `fit()`.

    Also BERT-style MLM and the paper's ablations (`objective`). Whatever
    the objective, the encoder to fine-tune is `pretrainer.backbone` (the
    discriminator's backbone where there is one), and `save_to_preset`
    writes a directory that every task class (e.g.
    `ElectraTextClassifier.from_preset(dir, num_classes=2)`) loads.

    `fit()` and `evaluate()` take batches of `{"token_ids", "segment_ids",
    "padding_mask"}` integer arrays of shape `(batch, sequence_length)` and no
    labels: masking, sampling and labelling happen inside the step, on the
    device, with fresh masks every step. `segment_ids` defaults to zeros and
    `padding_mask` to `token_ids != pad_token_id`.

    The towers' poolers (`pooled_dense`) take no part in pre-training and are
    frozen (as in every task model but the text classifier with
    `head="original"`, which trains it).

    Args:
        backbone: `ElectraBackbone`, the discriminator's encoder (the
            encoder being pre-trained, whatever the objective).
        objective: string, one of:
            - `"electra"` (default): replaced-token detection, the
              discriminator's loss over all real tokens.
            - `"electra_15"`: the same, with the discriminator's loss only
              over the masked positions.
            - `"mlm"`: BERT-style masked language modelling: no generator,
              `backbone` with a tied MLM head (`pretrainer.masked_lm`)
              predicts the original tokens at the masked positions; the
              loss counts those positions only. Masking defaults to BERT's
              80/10/10.
            - `"replace_mlm"`: the masked positions hold generator samples
              instead of `[MASK]`; `backbone` with an MLM head predicts the
              original tokens there. Loss: `generator_weight *` generator
              loss `+` MLM loss.
            - `"all_tokens_mlm"`: as `"replace_mlm"`, but predicting every
              token through a copy mechanism: the RTD head's sigmoid gives
              `D` = P(original), and the output distribution is `D` on the
              input token plus `1 - D` times the MLM softmax. Loss:
              `generator_weight *` generator loss `+` MLM loss over all real
              tokens `+ discriminator_weight *` the ELECTRA loss on the gate.
            Metrics: `loss`; `generator_*` and `replaced_fraction` with a
            generator; `discriminator_*` with the RTD head; `mlm_loss` and
            `mlm_accuracy` with an MLM head.
        generator_size: float. Generator width as a fraction of the
            discriminator's (hidden `round(h * generator_size)`, one head per
            64 units, feed-forward 4x hidden, same depth). Unused by
            `"mlm"`, like the other generator settings.
        embedding_sharing: string, how the towers share their embedding
            block (token, position and segment embeddings and their
            LayerNorm):
            - `"tied"` (default): one embedding block, trained by both
              losses (the original ELECTRA).
            - `"gdes"`: gradient-disentangled embedding sharing (He et al.,
              2021, DeBERTa-v3), against the "tug-of-war" of the two losses
              over the token embeddings. The generator owns and trains the
              token table `shared` (its MLM head's output projection too);
              the discriminator reads `stop_gradient(shared) + delta`, where
              `delta` (zero at the start, weight-decayed towards zero like
              any table) takes all of the discriminator's gradient. Only
              the token embeddings are disentangled: they are what both
              losses pull at, the generator's through its tied softmax
              over the vocabulary; the position and segment embeddings and
              the LayerNorm stay tied, so `"gdes"` differs from `"tied"` in
              that alone (DeBERTa-v3, which has no absolute position or
              segment embeddings, disentangles its word embeddings only).
              `save_to_preset` folds `shared + delta` into the discriminator's
              ordinary table; `pretrainer.backbone` is the disentangled
              encoder (`fold_embeddings(pretrainer.backbone)` gives a plain
              one), built anew from `backbone`, whose weights it takes.
            - `"separate"`: the generator has its own embedding block.
            Unused by `"mlm"`, like the other generator settings.
        tie_embeddings: deprecated alias: `True` is
            `embedding_sharing="tied"`, `False` `"separate"`.
        uniform_generator: bool. Ablation: replace masked tokens with
            uniformly random ones instead of generator samples.
        mask_rate: float in (0, 1). Fraction of the real tokens to mask; at
            most `int((mask_rate + 0.005) * sequence_length)` per sequence.
        mask_token_rate: float. Of the masked tokens, the fraction shown to
            the generator (the encoder with `"mlm"`) as `[MASK]`. Default
            0.85 (ELECTRA), 0.8 (BERT) with `objective="mlm"`.
        random_token_rate: float. Of the masked tokens, the fraction shown as
            a random token. Default 0.0 (ELECTRA), 0.1 (BERT) with
            `objective="mlm"`. The rest stay as they are.
        temperature: float. Softmax temperature for sampling replacements.
        generator_weight: float. Weight of the generator's MLM loss.
        discriminator_weight: float. Weight of the discriminator's loss
            (of the gate's ELECTRA loss with `"all_tokens_mlm"`). The
            encoder's own MLM loss has weight 1.
        pad_token_id, cls_token_id, sep_token_id, mask_token_id: int. Special
            token ids (BERT-uncased defaults); taken from `tokenizer` if set.
        tokenizer: optional keras-hub WordPiece tokenizer (e.g.
            `keras_hub.models.ElectraTokenizer`); saved with the presets.
        seed: int. Seed of the masking and sampling random stream.

    Example:
    ```python
    import numpy as np
    import keras_electra

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=1000
    )
    token_ids = np.random.randint(200, 1000, size=(64, 32))
    token_ids[:, 0], token_ids[:, -1] = 101, 102
    pretrainer.compile()  # AdamW as in the paper
    pretrainer.fit({"token_ids": token_ids}, batch_size=16, epochs=1)
    ```
    """

    def __init__(
        self,
        backbone,
        objective="electra",
        generator_size=0.25,
        embedding_sharing=None,
        uniform_generator=False,
        mask_rate=0.15,
        mask_token_rate=None,
        random_token_rate=None,
        temperature=1.0,
        generator_weight=1.0,
        discriminator_weight=50.0,
        pad_token_id=0,
        cls_token_id=101,
        sep_token_id=102,
        mask_token_id=103,
        tokenizer=None,
        seed=None,
        tie_embeddings=None,
        **kwargs,
    ):
        embedding_sharing = _embedding_sharing(
            embedding_sharing, tie_embeddings
        )
        if not isinstance(backbone, ElectraBackbone):
            raise ValueError(
                "`backbone` must be a `keras_electra.ElectraBackbone` "
                f"(`ElectraBackbone.from_preset` converts keras-hub presets); "
                f"got {type(backbone).__name__}."
            )
        if objective not in OBJECTIVES:
            raise ValueError(
                f"`objective` must be one of {', '.join(OBJECTIVES)}; got "
                f"{objective!r}."
            )
        spec = objectives.OBJECTIVE_SPECS[objective]
        if uniform_generator and not spec.has_generator:
            raise ValueError(
                f"`uniform_generator=True` needs a generator; objective "
                f"{objective!r} has none."
            )
        if mask_token_rate is None:
            mask_token_rate = spec.mask_token_rate
        if random_token_rate is None:
            random_token_rate = spec.random_token_rate
        if not 0 < mask_rate < 1:
            raise ValueError(f"`mask_rate` must be in (0, 1), got {mask_rate}.")
        if not (
            0 <= mask_token_rate
            and 0 <= random_token_rate
            and mask_token_rate + random_token_rate <= 1
        ):
            raise ValueError(
                "`mask_token_rate` and `random_token_rate` must be >= 0 and "
                f"sum to at most 1, got {mask_token_rate} and "
                f"{random_token_rate}."
            )
        if not temperature > 0:
            raise ValueError(
                f"`temperature` must be > 0, got {temperature}."
            )
        if tokenizer is not None:
            special_ids = special_token_ids(tokenizer)
        else:
            special_ids = dict(
                zip(
                    SPECIAL_TOKENS,
                    (pad_token_id, cls_token_id, sep_token_id, mask_token_id),
                )
            )
        for name, token_id in special_ids.items():
            if not 0 <= token_id < backbone.vocab_size:
                raise ValueError(
                    f"`{name}={token_id}` is outside the vocabulary "
                    f"[0, {backbone.vocab_size})."
                )
        if spec.has_generator:
            generator_config = ElectraBackbone.generator_config(
                backbone.get_config(), generator_size
            )
            generator_config.update(
                name="generator_backbone", dtype=backbone.dtype_policy
            )
        super().__init__(**kwargs)

        # === Layers ===
        # Parts an objective does without are `None`.
        self.generator = self.discriminator = self.masked_lm = None
        # The generator's variables live under "generator/": both towers
        # have e.g. "transformer_layer_0/...", and on PyTorch variables with
        # the same path collide (one tower's would miss `zero_grad`).
        if spec.has_generator:
            with keras.name_scope("generator"):
                generator_backbone = ElectraBackbone(
                    **generator_config,
                    embedding_owner=(
                        backbone if embedding_sharing == "tied" else None
                    ),
                )
            if embedding_sharing == "gdes":
                # The generator owns the embedding block (and takes
                # `backbone`'s); the discriminator is rebuilt on it.
                backbone = disentangle_embeddings(backbone, generator_backbone)
        if spec.has_rtd_head:
            self.discriminator = ElectraDiscriminator(
                backbone, name="discriminator", compile=False
            )
        if spec.has_generator:
            with keras.name_scope("generator"):
                self.generator = ElectraGenerator(
                    generator_backbone, name="generator", compile=False
                )
        if spec.has_mlm_head:
            # The encoder with its own tied MLM head: a BERT-style MaskedLM.
            self.masked_lm = ElectraGenerator(
                backbone, name="masked_lm", compile=False
            )
        if uniform_generator:
            # The ablation never calls the generator: its own variables
            # would get no gradient (TensorFlow warns about each of them in
            # every `fit`) and only weight decay. With GDES the
            # discriminator reads the generator's table, but through a
            # `stop_gradient`.
            trained = {id(v) for v in self.discriminator.variables}
            if embedding_sharing == "gdes":
                table = self.generator.backbone.token_embedding.embeddings
                trained.discard(id(table))
            for variable in self.generator.variables:
                if id(variable) not in trained:
                    variable.trainable = False
        self.tokenizer = tokenizer
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._create_metrics(spec)
        # Every variable exists now (see `build`): built, so that `fit` can
        # build the optimizer before the step is traced.
        self.built = True

        # === Config ===
        self.objective = objective
        self.generator_size = generator_size
        self.embedding_sharing = embedding_sharing
        self.uniform_generator = uniform_generator
        self.mask_rate = mask_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.temperature = temperature
        self.generator_weight = generator_weight
        self.discriminator_weight = discriminator_weight
        self.seed = seed
        for name, token_id in special_ids.items():
            setattr(self, name, token_id)

    def _create_metrics(self, spec):
        """The trackers of the objective's losses; the others are `None`."""
        generator = spec.has_generator
        rtd_head = spec.has_rtd_head
        mlm_head = spec.has_mlm_head
        Mean, Precision, Recall = (
            keras.metrics.Mean,
            keras.metrics.Precision,
            keras.metrics.Recall,
        )

        def metric(present, cls, name, **kwargs):
            return cls(name=name, **kwargs) if present else None

        self.generator_loss_tracker = metric(generator, Mean, "generator_loss")
        self.generator_accuracy = metric(generator, Mean, "generator_accuracy")
        self.discriminator_loss_tracker = metric(
            rtd_head, Mean, "discriminator_loss"
        )
        self.discriminator_accuracy = metric(
            rtd_head, Mean, "discriminator_accuracy"
        )
        self.discriminator_precision = metric(
            rtd_head, Precision, "discriminator_precision", thresholds=0.5
        )
        self.discriminator_recall = metric(
            rtd_head, Recall, "discriminator_recall", thresholds=0.5
        )
        self.replaced_fraction = metric(generator, Mean, "replaced_fraction")
        self.mlm_loss_tracker = metric(mlm_head, Mean, "mlm_loss")
        self.mlm_accuracy = metric(mlm_head, Mean, "mlm_accuracy")

    @property
    def backbone(self):
        """The encoder being pre-trained (the discriminator's backbone)."""
        if self.discriminator is not None:
            return self.discriminator.backbone
        return self.masked_lm.backbone

    def build(self, input_shape=None):
        # The towers are functional models, built when made, and the
        # tokenizer works on strings outside the step: nothing is left to
        # build (Keras' default `build` warns about the tokenizer).
        pass

    # === The pre-training step ===

    @property
    def objective_spec(self):
        """What the objective trains: `objectives.OBJECTIVE_SPECS` entry."""
        return objectives.OBJECTIVE_SPECS[self.objective]

    def call(self, inputs, training=False):
        spec = self.objective_spec
        token_ids, segment_ids, padding_mask = self._unpack(inputs)
        real_tokens = ops.cast(padding_mask, "float32")
        seed = self.seed_generator
        # 1. Mask (every objective): pick the positions, then show most of
        # them as [MASK] to the generator (to the encoder, for MLM).
        special_ids = [getattr(self, name) for name in SPECIAL_TOKENS]
        positions, weights = objectives.choose_mask_positions(
            token_ids, padding_mask, special_ids, self.mask_rate, seed
        )
        is_masked = objectives.mask_of_positions(
            positions, weights, token_ids.shape[1]
        )
        masked_ids = objectives.mask_tokens(
            token_ids, is_masked, self.mask_token_id, self.backbone.vocab_size,
            self.mask_token_rate, self.random_token_rate, seed,
        )
        targets = ops.take_along_axis(token_ids, positions, axis=1)
        outputs = {
            "masked_token_ids": masked_ids,
            "mask_positions": positions,
            "mask_weights": weights,
            "padding_mask": real_tokens,
        }
        encoder_ids = masked_ids
        if spec.has_generator:
            # 2-4. Generate, sample, put the samples in the text and label
            # the tokens that changed.
            generator_logits = self._generate(
                masked_ids, segment_ids, padding_mask, positions, training
            )
            samples = objectives.softmax_sample(
                generator_logits, self.temperature, seed
            )
            encoder_ids = objectives.scatter_at_positions(
                token_ids, positions, weights, samples
            )
            outputs["generator_targets"] = targets
            outputs["generator_logits"] = generator_logits
            outputs["sampled_token_ids"] = samples
            outputs["corrupted_token_ids"] = encoder_ids
            outputs["replaced"] = objectives.replaced_labels(
                encoder_ids, token_ids
            )
        # 5. The encoder reads the corrupted (or, for MLM, masked) text once;
        # each of its heads reads the encoder's output.
        encoder_inputs = {
            "token_ids": encoder_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
        }
        sequence_output = self.backbone(encoder_inputs, training=training)[
            "sequence_output"
        ]
        if spec.has_rtd_head:
            rtd_logits = self.discriminator.replaced_token_head(sequence_output)
            outputs["discriminator_logits"] = ops.cast(rtd_logits, "float32")
            outputs["discriminator_weights"] = {
                "real": real_tokens,
                "masked": ops.cast(is_masked, "float32"),
            }[spec.rtd_tokens]
        if spec.has_mlm_head:
            if spec.mlm_tokens == "all":
                # Every position, in order: (batch, sequence_length).
                positions = ops.zeros_like(token_ids) + ops.arange(
                    token_ids.shape[1], dtype="int32"
                )
                targets, weights = token_ids, real_tokens
            mlm_logits = self.masked_lm.masked_lm_head(
                sequence_output, mask_positions=positions
            )
            outputs["mlm_logits"] = ops.cast(mlm_logits, "float32")
            outputs["mlm_targets"] = targets
            outputs["mlm_weights"] = weights
        return outputs

    def _generate(
        self, masked_ids, segment_ids, padding_mask, positions, training
    ):
        """The generator's logits at the masked positions (float32)."""
        if self.uniform_generator:
            # All-zero logits: the sample is uniform over the vocabulary.
            return ops.zeros(
                ops.shape(positions) + (self.backbone.vocab_size,)
            )
        generator_logits = self.generator(
            {
                "token_ids": masked_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
                "mask_positions": positions,
            },
            training=training,
        )
        return ops.cast(generator_logits, "float32")

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        spec = self.objective_spec
        loss = 0.0
        if spec.has_generator:
            generator_loss, generator_correct = objectives.masked_lm_loss(
                y_pred["generator_logits"],
                y_pred["generator_targets"],
                y_pred["mask_weights"],
            )
            loss += self.generator_weight * generator_loss
            self.generator_loss_tracker.update_state(generator_loss)
            self.generator_accuracy.update_state(
                generator_correct, sample_weight=y_pred["mask_weights"]
            )
            self.replaced_fraction.update_state(
                y_pred["replaced"], sample_weight=y_pred["padding_mask"]
            )
        if spec.has_rtd_head:
            replaced = y_pred["replaced"]
            weights = y_pred["discriminator_weights"]
            discriminator_loss, discriminator_correct = objectives.rtd_loss(
                y_pred["discriminator_logits"], replaced, weights
            )
            loss += self.discriminator_weight * discriminator_loss
            probabilities = ops.sigmoid(y_pred["discriminator_logits"])
            self.discriminator_loss_tracker.update_state(discriminator_loss)
            self.discriminator_accuracy.update_state(
                discriminator_correct, sample_weight=weights
            )
            self.discriminator_precision.update_state(
                replaced, probabilities, sample_weight=weights
            )
            self.discriminator_recall.update_state(
                replaced, probabilities, sample_weight=weights
            )
        if spec.has_mlm_head:
            mlm_inputs = (
                y_pred["mlm_logits"],
                y_pred["mlm_targets"],
                y_pred["mlm_weights"],
            )
            if spec.copy_mechanism:
                mlm_loss, mlm_correct = objectives.copy_mechanism_loss(
                    *mlm_inputs,
                    y_pred["corrupted_token_ids"],
                    y_pred["discriminator_logits"],
                )
            else:
                mlm_loss, mlm_correct = objectives.masked_lm_loss(*mlm_inputs)
            loss += mlm_loss
            self.mlm_loss_tracker.update_state(mlm_loss)
            self.mlm_accuracy.update_state(
                mlm_correct, sample_weight=y_pred["mlm_weights"]
            )
        # Under a TensorFlow strategy the replicas' gradients are summed.
        return distribution.scale_loss_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Every metric is updated in `compute_loss`, which sees the masks.
        return self.get_metrics_result()

    def inspect(self, texts, seed=0):
        """One step on raw `texts`, token by token, drawn from `seed`.

        What was masked, what the generator sampled, what was replaced and
        the discriminator's probability of "replaced" for every word piece;
        the training random stream is left as it was. Needs a tokenizer, a
        generator and a discriminator. Returns an `Inspection`; see
        `keras_electra.pretraining.inspection` (`render_text`,
        `render_html`, `write_html`).
        """
        return inspection.inspect(self, texts, seed)

    # === Input checks ===

    def _unpack(self, inputs):
        if not isinstance(inputs, dict) or "token_ids" not in inputs:
            keys = sorted(inputs) if isinstance(inputs, dict) else type(inputs)
            raise ValueError(
                "ElectraPretrainer expects batches as a dict with "
                "'token_ids' (and optionally 'segment_ids', "
                f"'padding_mask'); the batch is missing 'token_ids' (got "
                f"{keys})."
            )
        token_ids = ops.cast(inputs["token_ids"], "int32")
        if len(token_ids.shape) != 2 or token_ids.shape[1] is None:
            raise ValueError(
                "`token_ids` must have a static shape (batch, "
                f"sequence_length); got {token_ids.shape}. Pad every batch to "
                "the same length."
            )
        check_sequence_length(
            token_ids.shape[1], self.backbone.max_sequence_length
        )
        if "padding_mask" in inputs:
            padding_mask = ops.cast(inputs["padding_mask"], "int32")
        else:
            padding_mask = ops.cast(
                ops.not_equal(token_ids, self.pad_token_id), "int32"
            )
        if "segment_ids" in inputs:
            segment_ids = ops.cast(inputs["segment_ids"], "int32")
        else:
            segment_ids = ops.zeros_like(token_ids)
        return token_ids, segment_ids, padding_mask

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        """`keras.Model.fit`, with every batch's token ids and length
        checked before it reaches the device.

        Takes what `keras.Model.fit` takes: a dict of NumPy arrays (checked
        at once), a `tf.data.Dataset` (checked as each batch is read), a
        Python generator or a `keras.utils.PyDataset` (each batch checked on
        the host as it is drawn). Ids outside `[0, vocab_size)` or sequences
        longer than `max_sequence_length` raise a `ValueError` starting with
        `keras_electra.utils.checks.INPUT_ERROR`.
        """
        checker = self.input_checker()
        # Before `input_errors`, which keeps the optimizer's state on JAX
        # only if it exists when entered.
        build_optimizer(self)
        with input_errors(self, kwargs):
            x, y = checker.checked(x, y)
            kwargs["validation_data"] = checker.checked_validation(
                validation_data
            )
            x, y, kwargs = untuned_inputs("fit", x, y, kwargs)
            return super().fit(x, y=y, **fit_arguments(x, kwargs))

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the inputs checked as in `fit`."""
        kwargs = by_name("evaluate", args, kwargs)
        if kwargs.get("_use_cached_eval_dataset"):
            # `fit`'s validation data, checked there.
            return super().evaluate(x, y=y, **kwargs)
        with input_errors(self, kwargs):
            x, y = self.input_checker().checked(x, y)
            x, y, kwargs = untuned_inputs("evaluate", x, y, kwargs)
            return super().evaluate(x, y=y, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, with the inputs checked as in `fit`."""
        kwargs = by_name("predict", args, kwargs)
        with input_errors(self, kwargs):
            x, _ = self.input_checker().checked(x)
            x, _, kwargs = untuned_inputs("predict", x, None, kwargs)
            return super().predict(x, **kwargs)

    def input_checker(self):
        """The `InputChecker` for the backbone's vocabulary and length."""
        return InputChecker(
            self.backbone.vocab_size, self.backbone.max_sequence_length
        )

    # === Training defaults ===

    def compile(self, optimizer="auto", **kwargs):
        """Configure pre-training; `optimizer="auto"` is the paper's AdamW.

        AdamW with learning rate 5e-4 (ELECTRA-Small), weight decay 0.01 off
        LayerNorm and bias, epsilon 1e-6 and gradient clipping at norm 1.0
        (`pretraining_optimizer()`). For real runs, give
        `pretraining_optimizer(total_steps=...)` its warmup and linear decay.
        """
        if optimizer == "auto":
            optimizer = pretraining_optimizer()
        super().compile(optimizer=optimizer, **kwargs)

    # === Config and presets ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "objective": self.objective,
                "generator_size": self.generator_size,
                "embedding_sharing": self.embedding_sharing,
                "uniform_generator": self.uniform_generator,
                "mask_rate": self.mask_rate,
                "mask_token_rate": self.mask_token_rate,
                "random_token_rate": self.random_token_rate,
                "temperature": self.temperature,
                "generator_weight": self.generator_weight,
                "discriminator_weight": self.discriminator_weight,
                "pad_token_id": self.pad_token_id,
                "cls_token_id": self.cls_token_id,
                "sep_token_id": self.sep_token_id,
                "mask_token_id": self.mask_token_id,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = _upgrade_config(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a pretrainer from a preset.

        Args:
            preset: a built-in name (`"electra_small"`, ..., randomly
                initialised, with the paper's generator size and mask rate),
                a directory written by `save_to_preset` (the same objective,
                its towers and heads and the tokenizer restored, to continue
                pre-training; with another `objective=...`, the parts both
                objectives have are restored), or any ELECTRA
                backbone preset (keras-hub name, handle or directory; the
                generator then starts from scratch), including a
                `transformers` ELECTRA checkpoint (directory or 'hf://'
                handle; its discriminator head too, if saved). For a
                `transformers` generator + discriminator pair, see
                `keras_electra.pretrainer_from_transformers`.
            load_weights: bool. Load saved weights.
            **kwargs: backbone config overrides (e.g. `vocab_size`) and
                pretrainer arguments (e.g. `mask_rate`, `seed`).

        Example:
        ```python
        import keras_electra

        pretrainer = keras_electra.ElectraPretrainer.from_preset(
            "electra_small", vocab_size=8000, mask_rate=0.2
        )
        ```
        """
        converter = preset_loading.transformers_converter(preset)
        if converter is not None:
            return converter.load_pretrainer(
                cls, preset, None, load_weights, kwargs
            )
        backbone_kwargs, kwargs = preset_loading.split_backbone_kwargs(
            ElectraBackbone, kwargs
        )
        backbone = ElectraBackbone.from_preset(
            preset, load_weights, **backbone_kwargs
        )
        if preset in ElectraBackbone.builtin_presets:
            config = ElectraBackbone.builtin_presets[preset]["pretrainer"]
            return cls(backbone, **{**config, **kwargs})
        config = {}
        if preset_utils.check_file_exists(preset, PRETRAINER_CONFIG_FILE):
            config = _upgrade_config(
                preset_utils.load_json(preset, PRETRAINER_CONFIG_FILE)
            )
        if preset_utils.check_file_exists(
            preset, preset_utils.TOKENIZER_CONFIG_FILE
        ):
            loader = preset_utils.get_preset_loader(preset)
            config["tokenizer"] = loader.load_tokenizer(None)
        pretrainer = cls(backbone, **{**config, **kwargs})
        if load_weights and config:
            pretrainer._load_saved_heads(preset)
        return pretrainer

    def _load_saved_heads(self, preset):
        """Load the heads and generator saved in `preset`, where we have them.

        The encoder is loaded already. The preset's task is the
        discriminator, or the MLM model for objectives without one.
        """
        task_class = preset_utils.check_config_class(
            preset_utils.load_json(preset, preset_utils.TASK_CONFIG_FILE)
        )
        task = {
            ElectraDiscriminator: self.discriminator,
            ElectraGenerator: self.masked_lm,
        }.get(task_class)
        weights_errors = preset_loading.weights_errors
        if task is not None:
            with weights_errors(preset, preset_utils.TASK_WEIGHTS_FILE):
                task.load_task_weights(
                    preset_utils.get_file(preset, preset_utils.TASK_WEIGHTS_FILE)
                )
        mlm_head_weights = os.path.join(preset, MLM_HEAD_WEIGHTS_FILE)
        if self.masked_lm is not None and os.path.exists(mlm_head_weights):
            with weights_errors(preset, MLM_HEAD_WEIGHTS_FILE):
                self.masked_lm.load_task_weights(mlm_head_weights)
        generator_preset = os.path.join(preset, GENERATOR_DIR)
        if self.generator is not None and os.path.isdir(generator_preset):
            # The preset's discriminator table, which the generator's weights
            # would overwrite ("tied") or which `delta` has to make up
            # ("gdes": delta = folded - shared).
            table = ops.convert_to_numpy(self._token_table())
            with weights_errors(preset, GENERATOR_DIR + "/"):
                self.generator.backbone.load_weights(
                    os.path.join(
                        generator_preset, preset_utils.MODEL_WEIGHTS_FILE
                    )
                )
                self.generator.load_task_weights(
                    os.path.join(
                        generator_preset, preset_utils.TASK_WEIGHTS_FILE
                    )
                )
            self._set_token_table(table)

    def _token_table(self):
        """The encoder's token embedding table (`shared + delta` for GDES)."""
        embedding = self.backbone.token_embedding
        if isinstance(embedding, GradientDisentangledEmbedding):
            return embedding.folded_embeddings()
        return embedding.embeddings

    def _set_token_table(self, table):
        """Make the encoder's token table `table`; with `"gdes"` by `delta`."""
        embedding = self.backbone.token_embedding
        if isinstance(embedding, GradientDisentangledEmbedding):
            embedding.assign_folded(table)
        else:
            embedding.embeddings.assign(table)

    def save_to_preset(self, preset_dir):
        """Save both towers (and the tokenizer) as a preset directory.

        The directory is a discriminator preset (loadable with
        `ElectraDiscriminator.from_preset`, `ElectraBackbone.from_preset`,
        any task's `from_preset` and
        `keras_hub.models.ElectraBackbone.from_preset`), with the generator
        in `generator/` and the pre-training settings, the objective
        included, in `pretrainer.json`. With `embedding_sharing="gdes"` the
        discriminator's token table is saved folded (`shared + delta`, an
        ordinary table) and `shared` is the generator's; `from_preset`
        restores `delta` as their difference. Objectives without a discriminator
        save the encoder with its MLM head as the preset's task instead (an
        `ElectraGenerator` preset); `"mlm"` has no `generator/`; with
        `"all_tokens_mlm"` the MLM head's weights are in
        `mlm_head.weights.h5`. It is written to a temporary folder first and
        moved into place, so a failure never leaves a half-written preset
        behind.
        """
        preset_loading.save_atomically(self._write_preset, preset_dir)

    def _write_preset(self, directory):
        if self.discriminator is not None:
            self.discriminator.save_to_preset(directory)
            if self.masked_lm is not None:
                self.masked_lm.save_task_weights(
                    os.path.join(directory, MLM_HEAD_WEIGHTS_FILE)
                )
        else:
            self.masked_lm.save_to_preset(directory)
        if self.generator is not None:
            self.generator.save_to_preset(os.path.join(directory, GENERATOR_DIR))
        if self.tokenizer is not None:
            self.tokenizer.save_to_preset(directory)
        config = self.get_config()
        for key in ("backbone", "name", "trainable", "dtype"):
            config.pop(key, None)
        with open(os.path.join(directory, PRETRAINER_CONFIG_FILE), "w") as f:
            json.dump(config, f, indent=4)


def _embedding_sharing(embedding_sharing, tie_embeddings):
    """The `embedding_sharing` mode, from it or the deprecated alias."""
    if tie_embeddings is not None:
        warnings.warn(
            "`tie_embeddings` is deprecated; use `embedding_sharing=\"tied\"` "
            "(for `True`) or `\"separate\"` (for `False`).",
            DeprecationWarning,
            stacklevel=3,
        )
        alias = "tied" if tie_embeddings else "separate"
        if embedding_sharing not in (None, alias):
            raise ValueError(
                f"`tie_embeddings={tie_embeddings}` and "
                f"`embedding_sharing={embedding_sharing!r}` disagree; pass "
                "`embedding_sharing` only."
            )
        embedding_sharing = alias
    if embedding_sharing is None:
        return "tied"
    if embedding_sharing not in EMBEDDING_SHARING:
        raise ValueError(
            f"`embedding_sharing` must be one of {', '.join(EMBEDDING_SHARING)}"
            f"; got {embedding_sharing!r}."
        )
    return embedding_sharing


def _upgrade_config(config):
    """A saved config, older ones with `tie_embeddings`, as today's."""
    config = dict(config)
    if "tie_embeddings" in config and "embedding_sharing" not in config:
        tied = config.pop("tie_embeddings")
        config["embedding_sharing"] = "tied" if tied else "separate"
    return config


def special_token_ids(tokenizer):
    """The `[PAD] [CLS] [SEP] [MASK]` ids of a tokenizer's vocabulary."""
    tokens = list(tokenizer.get_vocabulary())
    missing = [t for t in SPECIAL_TOKENS.values() if t not in tokens]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}; "
            "ELECTRA pre-training needs [PAD], [CLS], [SEP] and [MASK]."
        )
    return {name: tokens.index(t) for name, t in SPECIAL_TOKENS.items()}
