"""The module paths of keras_electra 0.1 (one flat package), still importable
with a `DeprecationWarning` that names the new path.

`import keras_electra.checkpointing` (or `from keras_electra.datasets import
load_glue`) loads the new module and registers it under the old name too, so
both names are the same module object.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "keras_electra.checkpointing": "keras_electra.training.checkpoints",
    "keras_electra.datasets": "keras_electra.data",
    "keras_electra.distribution": "keras_electra.training.distribution",
    "keras_electra.electra_backbone": "keras_electra.models.electra_backbone",
    "keras_electra.electra_discriminator": (
        "keras_electra.models.electra_discriminator"
    ),
    "keras_electra.electra_generator": "keras_electra.models.electra_generator",
    "keras_electra.electra_heads": "keras_electra.models.electra_heads",
    "keras_electra.electra_presets": "keras_electra.models.electra_presets",
    "keras_electra.electra_pretrainer": "keras_electra.pretraining.pretrainer",
    "keras_electra.electra_question_answerer": (
        "keras_electra.models.electra_question_answerer"
    ),
    "keras_electra.electra_text_classifier": (
        "keras_electra.models.electra_text_classifier"
    ),
    "keras_electra.electra_text_classifier_preprocessor": (
        "keras_electra.models.electra_text_classifier_preprocessor"
    ),
    "keras_electra.electra_token_classifier": (
        "keras_electra.models.electra_token_classifier"
    ),
    "keras_electra.electra_tokenizer": "keras_electra.models.electra_tokenizer",
    "keras_electra.flops": "keras_electra.pretraining.flops",
    "keras_electra.optimization": "keras_electra.training.optimizers",
    "keras_electra.pretraining_data": "keras_electra.pretraining",
    "keras_electra.probing": "keras_electra.pretraining.probing",
    "keras_electra.squad": "keras_electra.data.squad",
    "keras_electra.training_monitor": "keras_electra.training.callbacks",
    "keras_electra.transformers_conversion": (
        "keras_electra.conversion.transformers"
    ),
}


def warn_moved(old, stacklevel=3):
    warnings.warn(
        f"`{old}` moved to `{MOVED[old]}`; the old path will be removed in "
        "keras_electra 0.3.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


class _MovedModuleLoader(importlib.abc.Loader):
    def create_module(self, spec):
        warn_moved(spec.name, stacklevel=6)
        module = importlib.import_module(MOVED[spec.name])
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass  # Already executed under its new name.


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader())


def install():
    """Make the old module paths importable (idempotent)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
