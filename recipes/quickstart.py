import os
import tempfile

import keras_hub
import numpy as np

import keras_electra  # also registers the ELECTRA classes with Keras

# Default special ids are BERT-uncased: [PAD]=0 [CLS]=101 [SEP]=102
# [MASK]=103, so the vocabulary must be larger than 103.
VOCAB_SIZE = 1000

# A 2-layer model, randomly initialised.
pretrainer = keras_electra.ElectraPretrainer.from_preset(
    "electra_tiny", vocab_size=VOCAB_SIZE, seed=42
)
pretrainer.compile()  # AdamW, learning rate 5e-4, as for ELECTRA-Small

# Random "sentences": [CLS] w1 ... wn [SEP]. No labels: masking, sampling
# and the replaced/original labels are made inside the train step.
rng = np.random.default_rng(0)
token_ids = rng.integers(104, VOCAB_SIZE, size=(64, 32), dtype="int32")
token_ids[:, 0] = 101  # [CLS]
token_ids[:, -1] = 102  # [SEP]
inputs = {
    "token_ids": token_ids,
    "segment_ids": np.zeros_like(token_ids),
    "padding_mask": np.ones_like(token_ids),
}
pretrainer.fit(inputs, batch_size=16, epochs=2)

# Save both towers (and the pre-training settings) as a preset directory.
preset_dir = os.path.join(tempfile.mkdtemp(), "my_electra")
pretrainer.save_to_preset(preset_dir)

# The discriminator is the model to fine-tune: one logit per token.
discriminator = keras_electra.ElectraDiscriminator.from_preset(preset_dir)
logits = discriminator.predict(inputs, batch_size=16)
print(logits.shape)  # (64, 32)

# The encoder alone, also with plain keras-hub (after `import keras_electra`).
backbone = keras_hub.models.ElectraBackbone.from_preset(preset_dir)
print(backbone.count_params())

# Continue pre-training from the saved generator and discriminator.
pretrainer = keras_electra.ElectraPretrainer.from_preset(preset_dir)
pretrainer.compile()
pretrainer.fit(inputs, batch_size=16, epochs=1)
