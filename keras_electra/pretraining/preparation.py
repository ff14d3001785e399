"""A pre-training run's data, prepared once: the vocabulary and the example
shards, each written the first time and found the next (a resumed run reads
what its first start wrote).

- `prepare_vocabulary(corpus, path)`: the run's tokenizer from `path`
  (vocab.txt), trained on the corpus or copied from a given vocabulary
  first if `path` is not there yet.
- `prepare_examples(corpus, tokenizer, examples_dir)`: the packed example
  shards, written if `examples_dir` has none.
"""

import os

from keras_electra.models.electra_tokenizer import ElectraTokenizer
from keras_electra.pretraining.shards import METADATA_FILE
from keras_electra.pretraining.shards import write_pretraining_shards
from keras_electra.pretraining.vocabulary import load_vocabulary
from keras_electra.pretraining.vocabulary import train_vocabulary
from keras_electra.utils.file_io import write_text_atomically


def prepare_vocabulary(
    corpus,
    path,
    *,
    vocabulary=None,
    vocabulary_size=30522,
    lowercase=True,
    errors="strict",
):
    """The run's `ElectraTokenizer`, its vocabulary kept in `path`.

    If `path` does not exist yet, it is written first: a copy of
    `vocabulary` (a vocab.txt, checked), or a `vocabulary_size`-token
    WordPiece vocabulary trained on the distinct files of `corpus`.

    Args:
        corpus: list of text file paths.
        path: str. The run's vocab.txt.
        vocabulary: str or `None`. An existing vocab.txt to use.
        vocabulary_size: int. Size of the vocabulary to train.
        lowercase: bool. Lowercase (and strip accents), as uncased BERT.
        errors: `"strict"` or `"skip"`: a corpus file that is not UTF-8
            fails, or is skipped with a warning.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.pretraining.preparation import prepare_vocabulary

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as file:
        file.write("the cat sat.\\nthe dog ran.\\n")
    tokenizer = prepare_vocabulary(
        [corpus], os.path.join(folder, "vocab.txt"), vocabulary_size=40
    )
    tokenizer.vocabulary_size() <= 40  # True
    ```
    """
    if not os.path.exists(path):
        if vocabulary:
            words = load_vocabulary(vocabulary)
            write_text_atomically(path, "\n".join(words) + "\n")
        else:
            print(f"Training a {vocabulary_size:,}-token vocabulary...")
            train_vocabulary(
                sorted(set(corpus)),
                vocabulary_size,
                lowercase=lowercase,
                output_path=path,
                errors=errors,
            )
    return ElectraTokenizer(
        vocabulary=load_vocabulary(path), lowercase=lowercase
    )


def prepare_examples(
    corpus,
    tokenizer,
    examples_dir,
    *,
    max_sequence_length=128,
    seed=0,
    errors="strict",
):
    """Write the pre-training example shards of `corpus` to `examples_dir`,
    unless they are there already (its `metadata.json` exists).

    Args:
        corpus: list of text file paths; a file listed k times is packed k
            times.
        tokenizer: an `ElectraTokenizer`.
        examples_dir: str.
        max_sequence_length: int. Tokens per example.
        seed: int. Seed of the packing.
        errors: `"strict"` or `"skip"`, as `prepare_vocabulary`'s.

    Example:
    ```python
    import os
    import tempfile

    import keras_electra
    from keras_electra.pretraining.preparation import prepare_examples

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as file:
        file.write("the cat sat .\\nthe dog ran .\\n")
    tokenizer = keras_electra.ElectraTokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat",
         "dog", "ran", "."]
    )
    prepare_examples([corpus], tokenizer, os.path.join(folder, "examples"),
                     max_sequence_length=16)
    ```
    """
    if not os.path.exists(os.path.join(examples_dir, METADATA_FILE)):
        print(f"Packing examples from {len(corpus)} file(s)...")
        write_pretraining_shards(
            corpus,
            tokenizer,
            examples_dir,
            max_sequence_length=max_sequence_length,
            seed=seed,
            errors=errors,
        )
