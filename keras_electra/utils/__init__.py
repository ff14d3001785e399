"""Small utilities the rest of keras_electra builds on: file I/O, input
checks, preset loading, whether bfloat16 pays on the device, keeping the
memory that training steps free, TensorFlow's start without its load-time
chatter, and the few Keras internals we need."""
