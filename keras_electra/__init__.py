"""keras_electra: ELECTRA pre-training and fine-tuning for Keras 3.

Layers, bottom to top (a test reads every import and keeps them so):
`utils` < `models` < `training` < `pretraining` < `conversion`, and `data`
on `utils` alone.
"""

import importlib

from keras_electra.utils import tensorflow_start

# First, before Keras or keras-hub load TensorFlow: TF_CPP_MIN_LOG_LEVEL
# applied to the lines TensorFlow logs while it loads (see that module).
tensorflow_start.import_tensorflow()

from keras_electra import data
from keras_electra.conversion.transformers_export import export_to_transformers
from keras_electra.conversion.transformers import pretrainer_from_transformers
from keras_electra.conversion.serving import export_for_serving
from keras_electra.data import GLUE_TASKS
from keras_electra.data import classification_metrics
from keras_electra.data import corpus_statistics
from keras_electra.data import demo_corpus
from keras_electra.data import fetch_archive
from keras_electra.data import load_glue
from keras_electra.data import load_squad
from keras_electra.data import load_text_classification_file
from keras_electra.data import movie_reviews
from keras_electra.data import split_sentences
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_discriminator import ElectraDiscriminator
from keras_electra.models.electra_generator import ElectraGenerator
from keras_electra.models.electra_heads import ElectraReplacedTokenHead
from keras_electra.models.electra_masked_lm_preprocessor import (
    ElectraMaskedLMPreprocessor,
)
from keras_electra.models.electra_presets import PRESETS as presets
from keras_electra.models.electra_question_answerer import (
    ElectraQuestionAnswerer,
)
from keras_electra.models.electra_text_classifier import ElectraTextClassifier
from keras_electra.models.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)
from keras_electra.models.electra_token_classifier import (
    ElectraTokenClassifier,
)
from keras_electra.models.electra_token_classifier import align_word_labels
from keras_electra.models.electra_tokenizer import ElectraTokenizer
from keras_electra import pretraining
from keras_electra.pretraining import ExampleBuilder
from keras_electra.pretraining import build_examples
from keras_electra.pretraining import flops
from keras_electra.pretraining import load_vocabulary
from keras_electra.pretraining import pretraining_dataset
from keras_electra.pretraining import probing
from keras_electra.pretraining import read_documents
from keras_electra.pretraining import train_vocabulary
from keras_electra.pretraining import write_pretraining_shards
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.training.callbacks import NonFiniteLossError
from keras_electra.training.callbacks import StopOnNonFiniteLoss
from keras_electra.training.callbacks import TrainingCurves
from keras_electra.training.callbacks import plot_curves
from keras_electra.training.checkpoints import PretrainingCheckpoint
from keras_electra.training.checkpoints import latest_checkpoint
from keras_electra.training.checkpoints import restore_checkpoint
from keras_electra.training.checkpoints import save_checkpoint
from keras_electra.training.optimizers import FINETUNING_HYPERPARAMETERS
from keras_electra.training.optimizers import WarmupLinearDecay
from keras_electra.training.optimizers import electra_adamw
from keras_electra.training.optimizers import electra_finetuning_optimizer
from keras_electra.training.optimizers import layer_depths
from keras_electra.training.optimizers import layerwise_decay
from keras_electra.utils import legacy_paths

__version__ = "0.1.0"

legacy_paths.install()


def __getattr__(name):
    # The submodules 0.1 exported under their old names.
    old = f"keras_electra.{name}"
    if old in legacy_paths.MOVED:
        legacy_paths.warn_moved(old)
        return importlib.import_module(legacy_paths.MOVED[old])
    raise AttributeError(f"module 'keras_electra' has no attribute {name!r}")

