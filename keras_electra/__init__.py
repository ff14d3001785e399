"""keras_electra: ELECTRA pre-training and fine-tuning for Keras 3."""

from keras_electra.electra_backbone import ElectraBackbone
from keras_electra.electra_discriminator import ElectraDiscriminator
from keras_electra.electra_generator import ElectraGenerator
from keras_electra.electra_heads import ElectraReplacedTokenHead
from keras_electra.electra_pretrainer import ElectraPretrainer
from keras_electra.electra_presets import PRESETS as presets

__version__ = "0.1.0"
