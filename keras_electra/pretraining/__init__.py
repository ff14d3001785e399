"""ELECTRA pre-training: the objectives, the pretrainer, and the data that
feeds it (vocabulary, examples, TFRecord shards). Builds on `models` and
`training`.

The corpus format is the one of the original ELECTRA data script: plain
UTF-8 text files with one sentence (or line) per line, documents separated
by blank lines, and every file starting a new document. From there:

1. `train_vocabulary` learns a WordPiece vocabulary (special tokens first);
2. `ExampleBuilder` packs consecutive sentences of a document into
   `[CLS] A [SEP] B [SEP]` examples of a fixed length;
3. `write_pretraining_shards` runs the builder over the corpus and writes
   TFRecord shards plus `metadata.json`;
4. `pretraining_dataset` reads the shards back as shuffled batches for
   `ElectraPretrainer.fit`, on any backend.

To see what a pretrainer does on real sentences (masks, generator samples,
the discriminator's scores), `ElectraPretrainer.inspect(texts)` returns an
`Inspection`, shown by `render_text`, `render_html` or `write_html`
(`keras_electra.pretraining.inspection`).
"""

from keras_electra.pretraining.examples import ExampleBuilder
from keras_electra.pretraining.examples import build_examples
from keras_electra.pretraining.inspection import InspectedText
from keras_electra.pretraining.inspection import InspectedToken
from keras_electra.pretraining.inspection import Inspection
from keras_electra.pretraining.inspection import render_html
from keras_electra.pretraining.inspection import render_text
from keras_electra.pretraining.inspection import write_html
from keras_electra.pretraining.shards import FEATURES
from keras_electra.pretraining.shards import METADATA_FILE
from keras_electra.pretraining.shards import SHARD_PATTERN
from keras_electra.pretraining.shards import pretraining_dataset
from keras_electra.pretraining.shards import write_pretraining_shards
from keras_electra.pretraining.text_files import read_documents
from keras_electra.pretraining.vocabulary import SPECIAL_TOKENS
from keras_electra.pretraining.vocabulary import load_vocabulary
from keras_electra.pretraining.vocabulary import train_vocabulary
