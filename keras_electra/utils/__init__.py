"""Small utilities the rest of keras_electra builds on: file I/O, input
checks, preset loading and the few Keras internals we need."""
