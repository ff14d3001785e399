"""ELECTRA pre-training: replaced-token detection (Clark et al., ICLR 2020).

Every training step, inside the compiled step and on the device:

1. mask: pick `mask_rate` of the real tokens (never special tokens) and hide
   most of them behind `[MASK]`;
2. generate: the small generator predicts the hidden tokens;
3. sample: draw replacements from its softmax (Gumbel-max, no gradient);
4. label: a token is "replaced" only where the sample differs from the
   original;
5. discriminate: the discriminator scores every token of the corrupted text;
6. loss: `generator_weight * MLM loss + discriminator_weight * RTD loss`,
   one optimizer over both towers, which share their embeddings.
"""

import json
import os
import shutil
import sys
import tempfile

import keras
from keras import ops
from keras_hub.src.utils import preset_utils

from keras_electra import electra_presets
from keras_electra.electra_backbone import ElectraBackbone
from keras_electra.electra_discriminator import ElectraDiscriminator
from keras_electra.electra_generator import ElectraGenerator
from keras_electra.optimization import electra_adamw

PRETRAINER_CONFIG_FILE = "pretrainer.json"
GENERATOR_DIR = "generator"
SPECIAL_TOKENS = {
    "pad_token_id": "[PAD]",
    "cls_token_id": "[CLS]",
    "sep_token_id": "[SEP]",
    "mask_token_id": "[MASK]",
}


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraPretrainer(keras.Model):
    """ELECTRA generator + discriminator, pre-trained with `fit()`.

    `fit()` and `evaluate()` take batches of `{"token_ids", "segment_ids",
    "padding_mask"}` integer arrays of shape `(batch, sequence_length)` and no
    labels: masking, sampling and labelling happen inside the step, on the
    device, with fresh masks every step. `segment_ids` defaults to zeros and
    `padding_mask` to `token_ids != pad_token_id`.

    The towers' poolers (`pooled_dense`) take no part in pre-training and are
    frozen by the pretrainer; a discriminator loaded from a saved preset has
    a trainable pooler again.

    Args:
        backbone: `ElectraBackbone`, the discriminator's encoder.
        generator_size: float. Generator width as a fraction of the
            discriminator's (hidden `round(h * generator_size)`, one head per
            64 units, feed-forward 4x hidden, same depth).
        tie_embeddings: bool. Share the token, position and segment
            embeddings and their LayerNorm between the towers (the original).
            `False` gives the generator its own.
        uniform_generator: bool. Ablation: replace masked tokens with
            uniformly random ones instead of generator samples.
        mask_rate: float in (0, 1). Fraction of the real tokens to mask; at
            most `int((mask_rate + 0.005) * sequence_length)` per sequence.
        mask_token_rate: float. Of the masked tokens, the fraction shown to
            the generator as `[MASK]` (0.85 in ELECTRA, 0.8 in BERT).
        random_token_rate: float. Of the masked tokens, the fraction shown as
            a random token (0.0 in ELECTRA, 0.1 in BERT). The rest stay as
            they are.
        temperature: float. Softmax temperature for sampling replacements.
        generator_weight: float. Weight of the generator's MLM loss.
        discriminator_weight: float. Weight of the discriminator's loss.
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
        generator_size=0.25,
        tie_embeddings=True,
        uniform_generator=False,
        mask_rate=0.15,
        mask_token_rate=0.85,
        random_token_rate=0.0,
        temperature=1.0,
        generator_weight=1.0,
        discriminator_weight=50.0,
        pad_token_id=0,
        cls_token_id=101,
        sep_token_id=102,
        mask_token_id=103,
        tokenizer=None,
        seed=None,
        **kwargs,
    ):
        if not isinstance(backbone, ElectraBackbone):
            raise ValueError(
                "`backbone` must be a `keras_electra.ElectraBackbone` "
                f"(`ElectraBackbone.from_preset` converts keras-hub presets); "
                f"got {type(backbone).__name__}."
            )
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
            special_ids = {
                "pad_token_id": pad_token_id,
                "cls_token_id": cls_token_id,
                "sep_token_id": sep_token_id,
                "mask_token_id": mask_token_id,
            }
        for name, token_id in special_ids.items():
            if not 0 <= token_id < backbone.vocab_size:
                raise ValueError(
                    f"`{name}={token_id}` is outside the vocabulary "
                    f"[0, {backbone.vocab_size})."
                )
        generator_config = ElectraBackbone.generator_config(
            backbone.get_config(), generator_size
        )
        generator_config.update(name="generator_backbone", dtype=backbone.dtype_policy)
        super().__init__(**kwargs)

        # === Layers ===
        generator_backbone = ElectraBackbone(
            **generator_config,
            embedding_owner=backbone if tie_embeddings else None,
        )
        # The poolers take no part in pre-training (in the original they get
        # no gradient); freezing them keeps weight decay off them.
        backbone.pooled_dense.trainable = False
        generator_backbone.pooled_dense.trainable = False
        self.discriminator = ElectraDiscriminator(
            backbone, name="discriminator", compile=False
        )
        self.generator = ElectraGenerator(
            generator_backbone, name="generator", compile=False
        )
        self.tokenizer = tokenizer
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.generator_loss_tracker = keras.metrics.Mean("generator_loss")
        self.generator_accuracy = keras.metrics.Mean("generator_accuracy")
        self.discriminator_loss_tracker = keras.metrics.Mean(
            "discriminator_loss"
        )
        self.discriminator_accuracy = keras.metrics.Mean(
            "discriminator_accuracy"
        )
        self.discriminator_precision = keras.metrics.Precision(
            thresholds=0.5, name="discriminator_precision"
        )
        self.discriminator_recall = keras.metrics.Recall(
            thresholds=0.5, name="discriminator_recall"
        )
        self.replaced_fraction = keras.metrics.Mean("replaced_fraction")

        # === Config ===
        self.generator_size = generator_size
        self.tie_embeddings = tie_embeddings
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

    @property
    def backbone(self):
        """The discriminator's backbone."""
        return self.discriminator.backbone

    # === The ELECTRA step ===

    def call(self, inputs, training=False):
        token_ids, segment_ids, padding_mask = self._unpack(inputs)
        masked = self._mask(token_ids, padding_mask)
        generator_inputs = {
            "token_ids": masked["masked_token_ids"],
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
            "mask_positions": masked["mask_positions"],
        }
        if self.uniform_generator:
            # All-zero logits: the Gumbel-max sample is uniform over the vocab.
            generator_logits = ops.zeros(
                ops.shape(masked["mask_positions"]) + (self.backbone.vocab_size,)
            )
        else:
            generator_logits = self.generator(
                generator_inputs, training=training
            )
        generator_logits = ops.cast(generator_logits, "float32")
        sampled_ids = self._sample(generator_logits)
        # Scatter the samples into the sequence (positions are distinct).
        sampled_dense = ops.sum(
            masked["mask_one_hot"] * ops.expand_dims(sampled_ids, -1), axis=1
        )
        corrupted_ids = ops.where(masked["is_masked"], sampled_dense, token_ids)
        # A sample equal to the original counts as original.
        replaced = ops.cast(
            ops.not_equal(corrupted_ids, token_ids), "int32"
        )
        discriminator_logits = self.discriminator(
            {
                "token_ids": corrupted_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            training=training,
        )
        return {
            "masked_token_ids": masked["masked_token_ids"],
            "mask_positions": masked["mask_positions"],
            "mask_weights": masked["mask_weights"],
            "generator_targets": ops.take_along_axis(
                token_ids, masked["mask_positions"], axis=1
            ),
            "generator_logits": generator_logits,
            "sampled_token_ids": sampled_ids,
            "corrupted_token_ids": corrupted_ids,
            "replaced": replaced,
            "discriminator_logits": ops.cast(discriminator_logits, "float32"),
            "padding_mask": ops.cast(padding_mask, "float32"),
        }

    def _mask(self, token_ids, padding_mask):
        """Choose the masked positions and build the generator's input."""
        batch_size, sequence_length = ops.shape(token_ids)
        num_masked = int((self.mask_rate + 0.005) * sequence_length)
        if num_masked < 1:
            raise ValueError(
                f"Sequences of length {sequence_length} are too short to mask "
                f"at `mask_rate={self.mask_rate}`."
            )
        is_real = ops.not_equal(padding_mask, 0)
        is_candidate = is_real
        for special_id in (
            self.pad_token_id,
            self.cls_token_id,
            self.sep_token_id,
            self.mask_token_id,
        ):
            is_candidate = is_candidate & ops.not_equal(token_ids, special_id)
        num_real = ops.sum(ops.cast(is_real, "float32"), axis=1)
        num_candidates = ops.sum(ops.cast(is_candidate, "int32"), axis=1)
        num_to_mask = ops.clip(
            ops.cast(ops.round(num_real * self.mask_rate), "int32"),
            1,
            num_masked,
        )
        num_to_mask = ops.minimum(num_to_mask, num_candidates)
        # Random scores, candidates above everything else: the top
        # `num_to_mask` are a uniform sample without replacement.
        scores = keras.random.uniform(
            (batch_size, sequence_length), seed=self.seed_generator
        )
        scores = ops.where(is_candidate, scores, -1.0)
        _, mask_positions = ops.top_k(scores, k=num_masked)
        mask_positions = ops.cast(mask_positions, "int32")
        mask_weights = ops.cast(
            ops.expand_dims(ops.arange(num_masked), 0)
            < ops.expand_dims(num_to_mask, 1),
            "int32",
        )
        mask_one_hot = ops.one_hot(
            mask_positions, sequence_length, dtype="int32"
        ) * ops.expand_dims(mask_weights, -1)
        is_masked = ops.sum(mask_one_hot, axis=1) > 0
        # Of the masked tokens: [MASK], a random token, or left as is.
        draw = keras.random.uniform(
            (batch_size, sequence_length), seed=self.seed_generator
        )
        show_mask = is_masked & (draw < self.mask_token_rate)
        show_random = (
            is_masked
            & (draw >= self.mask_token_rate)
            & (draw < self.mask_token_rate + self.random_token_rate)
        )
        random_ids = keras.random.randint(
            (batch_size, sequence_length),
            0,
            self.backbone.vocab_size,
            seed=self.seed_generator,
            dtype="int32",
        )
        masked_token_ids = ops.where(show_random, random_ids, token_ids)
        masked_token_ids = ops.where(
            show_mask, self.mask_token_id, masked_token_ids
        )
        return {
            "masked_token_ids": masked_token_ids,
            "mask_positions": mask_positions,
            "mask_weights": ops.cast(mask_weights, "float32"),
            "mask_one_hot": mask_one_hot,
            "is_masked": is_masked,
        }

    def _sample(self, logits):
        """Gumbel-max sample from softmax(logits / temperature)."""
        logits = ops.stop_gradient(logits) / self.temperature
        uniform = keras.random.uniform(
            ops.shape(logits), seed=self.seed_generator
        )
        gumbel = -ops.log(-ops.log(uniform + 1e-9) + 1e-9)
        return ops.cast(ops.argmax(logits + gumbel, axis=-1), "int32")

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        mask_weights = y_pred["mask_weights"]
        padding_mask = y_pred["padding_mask"]
        replaced = y_pred["replaced"]
        generator_losses = keras.losses.sparse_categorical_crossentropy(
            y_pred["generator_targets"],
            y_pred["generator_logits"],
            from_logits=True,
        )
        generator_loss = ops.sum(generator_losses * mask_weights) / (
            ops.sum(mask_weights) + 1e-6
        )
        discriminator_losses = ops.binary_crossentropy(
            ops.cast(replaced, "float32"),
            y_pred["discriminator_logits"],
            from_logits=True,
        )
        discriminator_loss = ops.sum(discriminator_losses * padding_mask) / (
            ops.sum(padding_mask) + 1e-6
        )
        loss = (
            self.generator_weight * generator_loss
            + self.discriminator_weight * discriminator_loss
        )

        generator_correct = ops.equal(
            ops.argmax(y_pred["generator_logits"], axis=-1),
            y_pred["generator_targets"],
        )
        probabilities = ops.sigmoid(y_pred["discriminator_logits"])
        discriminator_correct = ops.equal(
            ops.cast(probabilities > 0.5, "int32"), replaced
        )
        self.generator_loss_tracker.update_state(generator_loss)
        self.generator_accuracy.update_state(
            generator_correct, sample_weight=mask_weights
        )
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.discriminator_accuracy.update_state(
            discriminator_correct, sample_weight=padding_mask
        )
        self.discriminator_precision.update_state(
            replaced, probabilities, sample_weight=padding_mask
        )
        self.discriminator_recall.update_state(
            replaced, probabilities, sample_weight=padding_mask
        )
        self.replaced_fraction.update_state(replaced, sample_weight=padding_mask)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Every metric is updated in `compute_loss`, which sees the masks.
        return self.get_metrics_result()

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
        sequence_length = token_ids.shape[1]
        if sequence_length > self.backbone.max_sequence_length:
            raise ValueError(
                f"Sequence length {sequence_length} is longer than the "
                "model's `max_sequence_length` "
                f"({self.backbone.max_sequence_length})."
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
        return self._with_checked_token_ids(
            super().fit,
            x,
            y=y,
            validation_data=self._check_token_ids(validation_data),
            **kwargs,
        )

    def evaluate(self, x=None, y=None, **kwargs):
        return self._with_checked_token_ids(super().evaluate, x, y=y, **kwargs)

    def _with_checked_token_ids(self, method, x, **kwargs):
        """Run `method` on `x` with the token ids checked on the host.

        Out-of-range ids would silently gather garbage on some backends
        (JAX clamps), so the data is checked before it reaches the device.
        """
        x = self._check_token_ids(x)
        try:
            return method(x, **kwargs)
        except Exception as error:
            if _TOKEN_ID_ERROR in str(error):
                message = str(error).split(_TOKEN_ID_ERROR)[1].split("\n")[0]
                raise ValueError(_TOKEN_ID_ERROR + message) from None
            raise

    def _check_token_ids(self, data):
        vocab_size = self.backbone.vocab_size
        if data is None:
            return None
        if isinstance(data, dict):
            if "token_ids" in data:
                ids = keras.ops.convert_to_numpy(data["token_ids"])
                _raise_if_out_of_range(ids.min(), ids.max(), vocab_size)
            return data
        # Only a tf.data pipeline can be a Dataset, and then TF is loaded.
        tf = sys.modules.get("tensorflow")
        if tf is not None and isinstance(data, tf.data.Dataset):

            def check(batch):
                if isinstance(batch, dict) and "token_ids" in batch:
                    ids = batch["token_ids"]
                    tf.debugging.assert_non_negative(
                        ids, message=_TOKEN_ID_ERROR + " below 0."
                    )
                    tf.debugging.assert_less(
                        ids,
                        tf.cast(vocab_size, ids.dtype),
                        message=_TOKEN_ID_ERROR
                        + f" >= the vocabulary size {vocab_size}.",
                    )
                return batch

            return data.map(check)
        return data

    # === Training defaults ===

    def compile(self, optimizer="auto", **kwargs):
        """Configure pre-training; `optimizer="auto"` is the paper's AdamW.

        AdamW with learning rate 5e-4 (ELECTRA-Small), weight decay 0.01 off
        LayerNorm and bias, epsilon 1e-6 and gradient clipping at norm 1.0.
        Use a schedule (warmup, then linear decay) for real runs.
        """
        if optimizer == "auto":
            optimizer = electra_adamw(learning_rate=5e-4, global_clipnorm=1.0)
        super().compile(optimizer=optimizer, **kwargs)

    # === Config and presets ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "generator_size": self.generator_size,
                "tie_embeddings": self.tie_embeddings,
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
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a pretrainer from a preset.

        Args:
            preset: a built-in name (`"electra_small"`, ..., randomly
                initialised, with the paper's generator size and mask rate),
                a directory written by `save_to_preset` (both towers and the
                tokenizer restored, to continue pre-training), or any ELECTRA
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
        from keras_electra import transformers_conversion

        if transformers_conversion.is_transformers_preset(preset):
            return transformers_conversion.load_pretrainer(
                cls, preset, None, load_weights, kwargs
            )
        backbone_kwargs, kwargs = electra_presets.split_backbone_kwargs(
            ElectraBackbone, kwargs
        )
        backbone = ElectraBackbone.from_preset(
            preset, load_weights, **backbone_kwargs
        )
        if preset in electra_presets.PRESETS:
            config = electra_presets.PRESETS[preset]["pretrainer"]
            return cls(backbone, **{**config, **kwargs})
        config = {}
        if preset_utils.check_file_exists(preset, PRETRAINER_CONFIG_FILE):
            config = preset_utils.load_json(preset, PRETRAINER_CONFIG_FILE)
        if preset_utils.check_file_exists(
            preset, preset_utils.TOKENIZER_CONFIG_FILE
        ):
            loader = preset_utils.get_preset_loader(preset)
            config["tokenizer"] = loader.load_tokenizer(None)
        pretrainer = cls(backbone, **{**config, **kwargs})
        if load_weights and config:
            pretrainer.discriminator.load_task_weights(
                preset_utils.get_file(preset, preset_utils.TASK_WEIGHTS_FILE)
            )
            generator_preset = os.path.join(preset, GENERATOR_DIR)
            pretrainer.generator.backbone.load_weights(
                os.path.join(generator_preset, preset_utils.MODEL_WEIGHTS_FILE)
            )
            pretrainer.generator.load_task_weights(
                os.path.join(generator_preset, preset_utils.TASK_WEIGHTS_FILE)
            )
        return pretrainer

    def save_to_preset(self, preset_dir):
        """Save both towers (and the tokenizer) as a preset directory.

        The directory is a discriminator preset (loadable with
        `ElectraDiscriminator.from_preset`, `ElectraBackbone.from_preset` and
        `keras_hub.models.ElectraBackbone.from_preset`), with the generator
        in `generator/` and the pre-training settings in `pretrainer.json`.
        It is written to a temporary folder first and moved into place, so a
        failure never leaves a half-written preset behind.
        """
        preset_dir = os.path.abspath(preset_dir)
        parent = os.path.dirname(preset_dir)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".electra-preset-", dir=parent)
        try:
            self.discriminator.save_to_preset(staging)
            self.generator.save_to_preset(os.path.join(staging, GENERATOR_DIR))
            if self.tokenizer is not None:
                self.tokenizer.save_to_preset(staging)
            config = self.get_config()
            for key in ("backbone", "name", "trainable", "dtype"):
                config.pop(key, None)
            with open(os.path.join(staging, PRETRAINER_CONFIG_FILE), "w") as f:
                json.dump(config, f, indent=4)
            _replace_directory(staging, preset_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


_TOKEN_ID_ERROR = "Token ids must be in [0, vocabulary size); found ids"


def _raise_if_out_of_range(smallest, largest, vocab_size):
    if smallest < 0:
        raise ValueError(f"{_TOKEN_ID_ERROR} below 0 (min {smallest}).")
    if largest >= vocab_size:
        raise ValueError(
            f"{_TOKEN_ID_ERROR} >= the vocabulary size {vocab_size} "
            f"(max {largest})."
        )


def special_token_ids(tokenizer):
    """The `[PAD] [CLS] [SEP] [MASK]` ids of a tokenizer's vocabulary."""
    vocabulary = list(tokenizer.get_vocabulary())
    missing = [t for t in SPECIAL_TOKENS.values() if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}; "
            "ELECTRA pre-training needs [PAD], [CLS], [SEP] and [MASK]."
        )
    return {name: vocabulary.index(t) for name, t in SPECIAL_TOKENS.items()}


def _replace_directory(source, target):
    """Move `source` to `target`, replacing any old `target` only at the end."""
    backup = None
    if os.path.exists(target):
        backup = tempfile.mkdtemp(
            prefix=".electra-old-", dir=os.path.dirname(target)
        )
        os.rmdir(backup)
        os.rename(target, backup)
    os.rename(source, target)
    if backup:
        shutil.rmtree(backup, ignore_errors=True)
