"""Reading `transformers` checkpoints: `model.safetensors`, sharded
safetensors (`model.safetensors.index.json`) or `pytorch_model.bin`, with
every tensor checked against the Keras variable it loads into."""

import contextlib
import warnings

import numpy as np

from keras_electra.conversion.transformers_format import BACKBONE_PREFIX
from keras_electra.conversion.transformers_format import PYTORCH_FILE
from keras_electra.conversion.transformers_format import SAFETENSORS_FILE
from keras_electra.conversion.transformers_format import SAFETENSORS_INDEX_FILE
from keras_electra.conversion.transformers_format import generator_head_entries
from keras_electra.conversion.transformers_format import numpy
from keras_electra.conversion.transformers_format import source
from keras_electra.conversion.transformers_format import to_keras
from keras_electra.conversion.transformers_format import transformers_shape
from keras_electra.utils.keras_compat import preset_utils

# === Reading checkpoints ===


def _normalize_name(name):
    if name.startswith(BACKBONE_PREFIX):
        name = name[len(BACKBONE_PREFIX) :]
    # Very old checkpoints name LayerNorm parameters gamma and beta.
    if ".LayerNorm." in name or name.startswith("LayerNorm."):
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
    return name


class TransformersCheckpoint(contextlib.ExitStack):
    """The tensors of a `transformers` checkpoint, by prefix-free name.

    Opens `model.safetensors`, the shards listed in
    `model.safetensors.index.json` or, failing both, `pytorch_model.bin`.
    Names are looked up without the `electra.` prefix that task models add.
    """

    def __init__(self, preset):
        super().__init__()
        self.preset = preset
        self._keys = {}
        self._readers = {}
        if preset_utils.check_file_exists(preset, SAFETENSORS_FILE):
            self._open_safetensors(SAFETENSORS_FILE)
        elif preset_utils.check_file_exists(preset, SAFETENSORS_INDEX_FILE):
            index = preset_utils.load_json(preset, SAFETENSORS_INDEX_FILE)
            for filename in sorted(set(index["weight_map"].values())):
                self._open_safetensors(filename)
        elif preset_utils.check_file_exists(preset, PYTORCH_FILE):
            self._open_pytorch(PYTORCH_FILE)
        else:
            raise ValueError(
                f"{source(preset)} has no weights file: expected "
                f"{SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} or "
                f"{PYTORCH_FILE}. Pass `load_weights=False` for a randomly "
                "initialised model of its architecture."
            )

    def _add(self, key, reader):
        name = _normalize_name(key)
        if name in self._keys:
            raise ValueError(
                f"{source(self.preset)} holds both '{self._keys[name]}' and "
                f"'{key}'; cannot tell which one to load."
            )
        self._keys[name] = key
        self._readers[name] = reader

    def _open_safetensors(self, filename):
        try:
            import safetensors
        except ImportError:
            raise ImportError(
                "Reading `transformers` checkpoints needs the `safetensors` "
                "package: `pip install safetensors`."
            ) from None
        path = preset_utils.get_file(self.preset, filename)
        try:
            file = self.enter_context(
                safetensors.safe_open(path, framework="np")
            )
        except Exception as error:
            raise ValueError(
                f"{source(self.preset)}: {filename} is truncated or corrupt "
                f"({type(error).__name__}: {error})."
            ) from None
        for key in file.keys():
            self._add(key, lambda key=key, file=file: file.get_tensor(key))

    def _open_pytorch(self, filename):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"{source(self.preset)} stores its weights in {filename}, "
                "which only `torch` can read: `pip install torch`, or save "
                "the checkpoint as safetensors "
                "(`save_pretrained(..., safe_serialization=True)`)."
            ) from None
        path = preset_utils.get_file(self.preset, filename)
        # weights_only=True: tensors only, never arbitrary pickled objects.
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # UnpicklingError, truncated zip, ...
            detail = " ".join(str(error).split())[:300]
            raise ValueError(
                f"{source(self.preset)}: {filename} is refused or corrupt: "
                "only plain tensors are loaded from it (`torch.load(..., "
                "weights_only=True)`), never pickled objects or code "
                f"({type(error).__name__}: {detail})."
            ) from None
        if not isinstance(state, dict):
            raise ValueError(
                f"{source(self.preset)}: {filename} holds a "
                f"{type(state).__name__}, not a state dict of tensors."
            )
        for key, tensor in state.items():
            if not torch.is_tensor(tensor):
                continue
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            array = tensor.detach().cpu().numpy()
            self._add(key, lambda array=array: array)

    def __contains__(self, name):
        return name in self._keys

    def key(self, name):
        """The name as stored in the checkpoint (with its prefix, if any)."""
        return self._keys.get(name, name)

    def get(self, name):
        return np.asarray(self._readers[name]())


def check_present(checkpoint, entries, what):
    missing = [name for name, _, _ in entries if name not in checkpoint]
    if missing:
        shown = ", ".join(f"'{name}'" for name in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{source(checkpoint.preset)} lacks {len(missing)} {what} "
            f"weight(s) that its config calls for: {shown}{more}."
        )


def read_checked(checkpoint, name, variable, layout):
    """The checkpoint tensor `name`, after checking its shape."""
    array = checkpoint.get(name)
    expected = transformers_shape(layout, variable.shape)
    if tuple(array.shape) != expected:
        raise ValueError(
            f"Weight '{checkpoint.key(name)}' of {source(checkpoint.preset)} "
            f"has shape {tuple(array.shape)}, but its config implies "
            f"{expected}."
        )
    return array


def load_entries(checkpoint, entries, what):
    check_present(checkpoint, entries, what)
    arrays = [
        read_checked(checkpoint, name, variable, layout)
        for name, variable, layout in entries
    ]
    for (_, variable, layout), array in zip(entries, arrays):
        variable.assign(to_keras(layout, array, variable.shape))


def load_optional_head(checkpoint, entries, what, architecture_hint):
    """Load a task head if the checkpoint has one; warn if it has none."""
    if not any(name in checkpoint for name, _, _ in entries):
        warnings.warn(
            f"{source(checkpoint.preset)} holds no {what} weights (they come "
            f"with `{architecture_hint}` checkpoints); the head keeps its "
            "random initialisation.",
            stacklevel=4,
        )
        return False
    load_entries(checkpoint, entries, what)
    return True


def load_generator_head(generator, checkpoint):
    loaded = load_optional_head(
        checkpoint,
        generator_head_entries(generator),
        "masked-LM head",
        "ElectraForMaskedLM",
    )
    if not loaded:
        return
    if "generator_lm_head.weight" in checkpoint:
        # Saved untied (or both copies of a tied weight): our output layer
        # is the token embedding, so the two must agree.
        output = checkpoint.get("generator_lm_head.weight")
        embedding = numpy(generator.backbone.token_embedding.embeddings)
        if output.shape != embedding.shape or not np.allclose(
            output, embedding, atol=1e-6, rtol=0
        ):
            raise ValueError(
                f"{source(checkpoint.preset)} has an output layer "
                "'generator_lm_head.weight' that differs from the token "
                "embedding; ElectraGenerator ties the two and cannot hold it."
            )
    if generator.backbone.approximate_gelu:
        warn_generator_head_gelu(stacklevel=4)


def warn_generator_head_gelu(stacklevel):
    warnings.warn(
        "`transformers`' ElectraForMaskedLM applies exact GELU in its "
        "prediction head whatever `hidden_act` says, while this "
        "ElectraGenerator (approximate_gelu=True) uses the tanh approximation "
        "there as everywhere else: its logits differ slightly from "
        "`transformers`'.",
        stacklevel=stacklevel,
    )
