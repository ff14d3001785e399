"""The ELECTRA models: backbone, generator, discriminator, heads, tokenizer,
preprocessors, task models and the built-in presets. Depends on nothing of
keras_electra but `utils`."""
