"""Data for pre-training and fine-tuning: pinned public sources, corpora,
task loaders and metrics. Depends on nothing of keras_electra but `utils`.

- `sources`: `SOURCES`, `fetch_archive`, `cache_dir`, `iter_archive_members`;
- `corpora`: `demo_corpus`, `split_sentences`, `corpus_statistics`;
- `text_classification`: `movie_reviews`, `load_text_classification_file`;
- `glue`: `GLUE_TASKS`, `load_glue`;
- `squad`: `load_squad`, `squad_windows`, `best_spans`, `squad_answer`,
  `squad_metric`;
- `metrics`: `classification_metrics`.
"""

from keras_electra.data.corpora import CORPUS_SOURCES
from keras_electra.data.corpora import DEMO_CORPUS_SOURCES
from keras_electra.data.corpora import corpus_statistics
from keras_electra.data.corpora import demo_corpus
from keras_electra.data.corpora import split_sentences
from keras_electra.data.glue import GLUE_TASKS
from keras_electra.data.glue import load_glue
from keras_electra.data.metrics import classification_metrics
from keras_electra.data.sources import SOURCES
from keras_electra.data.sources import cache_dir
from keras_electra.data.sources import fetch_archive
from keras_electra.data.sources import iter_archive_members
from keras_electra.data.sources import sha256_of
from keras_electra.data.squad import answer_from_span
from keras_electra.data.squad import best_spans
from keras_electra.data.squad import load_squad
from keras_electra.data.squad import normalize_answer
from keras_electra.data.squad import squad_answer
from keras_electra.data.squad import squad_metric
from keras_electra.data.squad import squad_windows
from keras_electra.data.text_classification import (
    load_text_classification_file,
)
from keras_electra.data.text_classification import movie_reviews
