"""keras_electra: ELECTRA pre-training and fine-tuning for Keras 3."""

from keras_electra.electra_backbone import ElectraBackbone
from keras_electra.electra_discriminator import ElectraDiscriminator
from keras_electra.electra_generator import ElectraGenerator
from keras_electra.electra_heads import ElectraReplacedTokenHead
from keras_electra.electra_pretrainer import ElectraPretrainer
from keras_electra.electra_presets import PRESETS as presets
from keras_electra.electra_question_answerer import ElectraQuestionAnswerer
from keras_electra.transformers_conversion import export_to_transformers
from keras_electra.transformers_conversion import pretrainer_from_transformers
from keras_electra.electra_text_classifier import ElectraTextClassifier
from keras_electra.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)
from keras_electra.electra_token_classifier import ElectraTokenClassifier
from keras_electra.electra_token_classifier import align_word_labels
from keras_electra.electra_tokenizer import ElectraTokenizer

__version__ = "0.1.0"
