"""Hugging Face `transformers` ELECTRA checkpoints: reading, conversion in,
export out. Builds on `models` and `pretraining`; reached from `from_preset`
through `keras_electra.utils.preset_loading.transformers_converter`."""
