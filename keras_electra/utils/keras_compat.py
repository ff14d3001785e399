"""The Keras and keras-hub internals keras_electra uses, in one place.

Each is here because no public API does the job yet; the comment beside it
names the public alternative it waits for. Nothing else in the package
imports `keras.src` or `keras_hub.src`.
"""

# keras-hub's preset files and loaders (`load_json`, `check_file_exists`,
# `get_preset_loader`, `check_config_class`, the file-name constants): the
# machinery behind `from_preset` / `save_to_preset`. Waits for a public
# `keras_hub.utils` preset API (keras-hub exports only `upload_preset`).
from keras_hub.src.utils import preset_utils  # noqa: F401

# The tanh GELU that ELECTRA's released checkpoints use, as keras-hub names
# it for serialisation. Waits for `keras.activations.gelu(approximate=True)`
# to serialise under its own name.
from keras_hub.src.utils.keras_utils import gelu_approximate  # noqa: F401
