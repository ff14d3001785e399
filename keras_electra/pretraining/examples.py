"""`ExampleBuilder`: consecutive sentences of a document packed into
`[CLS] A [SEP] B [SEP]` examples of a fixed length (no next-sentence
prediction, so `B` simply continues `A`), as the original ELECTRA data script
does.
"""


import numpy as np

from keras_electra.pretraining.text_files import _END
from keras_electra.utils.checks import require_tensorflow

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

# Sentences tokenised per call of the (compiled) tokenizer.
_TOKENIZE_BATCH = 2048
# The shortest sequence that holds `[CLS] a [SEP] b [SEP]`; also the lower
# bound of the random short target lengths, as in ELECTRA.
_MIN_SEQUENCE_LENGTH = 5

# === Examples ===


class ExampleBuilder:
    """Pack the sentences of documents into fixed-length ELECTRA examples.

    As in the original ELECTRA data script, consecutive sentences of a
    document are collected until they fill the current target length; then
    they become one example, `[CLS] A [SEP] B [SEP]`, with `A` the first
    sentences (about half the target) and `B` the rest, split at a sentence
    boundary. There is no next-sentence prediction: `B` always continues `A`.

    - The target is `max_sequence_length`, except that, with probability
      `short_sequence_rate`, an example gets a random target, uniform in
      `[5, max_sequence_length]` (sentences are still whole, so such an
      example is at least that long).
    - With probability `single_segment_rate` (and whenever it holds a single
      sentence) an example is one segment, `[CLS] A [SEP]`, as in
      single-sentence classification tasks.
    - The sentences left at the end of a document form a last, shorter,
      example; examples never cross documents.
    - Sentences are collected until the tokens fit exactly (the `[CLS]` and
      `[SEP]`s counted), so only the last sentence of an example is ever cut
      and every sentence keeps at least its first token. A sentence longer
      than a whole sequence becomes one example of its first
      `max_sequence_length - 2` tokens.

    Examples are dicts of `int32` NumPy arrays of shape
    `(max_sequence_length,)`: `token_ids` (padded with `[PAD]`),
    `segment_ids` (0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 on padding) and
    `padding_mask` (1 on real tokens). The sentences are tokenised a few
    thousand at a time by one compiled call of the tokenizer.

    Args:
        tokenizer: a keras-hub WordPiece tokenizer, e.g. `ElectraTokenizer`,
            whose vocabulary has `[PAD]`, `[CLS]` and `[SEP]`.
        max_sequence_length: int, at least 5. Length of every example.
        seed: int. Seed of the builder's random stream; the same seed and
            documents give the same examples.
        single_segment_rate: float in [0, 1].
        short_sequence_rate: float in [0, 1].

    Example:
    ```python
    import keras_electra
    from keras_electra import pretraining

    vocabulary = pretraining.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    builder = pretraining.ExampleBuilder(tokenizer, 12, seed=1)
    documents = [["a b c.", "b c.", "c a."], ["a."]]
    for example in builder.build(documents):
        print(example["token_ids"], example["segment_ids"])
    ```
    """

    def __init__(
        self,
        tokenizer,
        max_sequence_length,
        seed=0,
        single_segment_rate=0.1,
        short_sequence_rate=0.05,
    ):
        require_tensorflow("ExampleBuilder")
        if (
            not isinstance(max_sequence_length, (int, np.integer))
            or max_sequence_length < _MIN_SEQUENCE_LENGTH
        ):
            raise ValueError(
                "`max_sequence_length` must be an integer of at least "
                f"{_MIN_SEQUENCE_LENGTH} (`[CLS] a [SEP] b [SEP]`), got "
                f"{max_sequence_length!r}."
            )
        for name, rate in (
            ("single_segment_rate", single_segment_rate),
            ("short_sequence_rate", short_sequence_rate),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"`{name}` must be in [0, 1], got {rate}.")
        _check_seed(seed)
        self.tokenizer = tokenizer
        self.max_sequence_length = int(max_sequence_length)
        self.seed = seed
        self.single_segment_rate = single_segment_rate
        self.short_sequence_rate = short_sequence_rate
        ids = _special_token_ids(tokenizer, ("[PAD]", "[CLS]", "[SEP]"))
        self.pad_token_id, self.cls_token_id, self.sep_token_id = ids
        if getattr(tokenizer, "sequence_length", None):
            # Dense, padded outputs would hide the sentence lengths.
            tokenizer = _copy_tokenizer(tokenizer, sequence_length=None)
        # Compiled, the keras-hub tokenizer runs its TF (tensorflow-text)
        # path and returns a RaggedTensor; called eagerly it would take its
        # pure-Python path, one sentence at a time.
        self._tokenize = tf.function(
            tokenizer.tokenize,
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        self._reset(seed)

    def build(self, documents):
        """Yield the examples of `documents`, lists of sentence strings.

        The builder's random stream continues from one call to the next; a
        new builder with the same seed starts it again.
        """
        return self._build(_document_stream(documents))

    # === Internals ===

    def _reset(self, seed):
        self._rng = np.random.default_rng(seed)
        self._sentences = []
        self._length = 0
        self._start_example()

    def _start_example(self):
        self._sentences = []
        self._length = 0
        self._single = self._rng.random() < self.single_segment_rate
        if self._rng.random() < self.short_sequence_rate:
            self._target = int(
                self._rng.integers(
                    _MIN_SEQUENCE_LENGTH, self.max_sequence_length + 1
                )
            )
        else:
            self._target = self.max_sequence_length
        # Content tokens wanted: the target less `[CLS]` and the `[SEP]`s.
        self._content_target = self._target - (2 if self._single else 3)

    def _build(self, stream):
        """Examples from a stream of sentences and `_END` markers."""
        batch, count = [], 0
        for item in stream:
            batch.append(item)
            if item is not _END:
                count += 1
                if count == _TOKENIZE_BATCH:
                    yield from self._add(batch)
                    batch, count = [], 0
        yield from self._add(batch)
        if self._sentences:
            yield self._emit()

    def _add(self, batch):
        texts = [item for item in batch if item is not _END]
        token_lists = iter(self._tokenize_texts(texts))
        for item in batch:
            if item is _END:
                if self._sentences:
                    yield self._emit()
                continue
            tokens = next(token_lists)
            if not len(tokens):
                continue
            self._sentences.append(tokens)
            self._length += len(tokens)
            if self._length >= self._content_target:
                yield self._emit()

    def _tokenize_texts(self, texts):
        if not texts:
            return []
        ragged = self._tokenize(tf.constant(texts, dtype=tf.string))
        flat = ragged.flat_values.numpy().astype("int32", copy=False)
        splits = ragged.row_splits.numpy()
        return [flat[start:end] for start, end in zip(splits[:-1], splits[1:])]

    def _emit(self):
        sentences = self._sentences
        length = self.max_sequence_length
        if self._single or len(sentences) == 1:
            first = np.concatenate(sentences)[: length - 2]
            second = None
        else:
            # A: whole sentences up to about half the target; B: at least
            # the last sentence. The boundary sentence, the one that takes A
            # past half, goes to A half of the time (as in ELECTRA).
            half = (self._target - 3) // 2
            split, first_length = 1, len(sentences[0])
            while split < len(sentences) - 1:
                size = len(sentences[split])
                if first_length + size < half:
                    split += 1
                    first_length += size
                    continue
                if first_length < half and self._rng.random() < 0.5:
                    split += 1
                break
            # A never reaches the content target (the sentence that did is
            # in B), so B keeps at least one token; the cap is a safeguard.
            first = np.concatenate(sentences[:split])[: length - 4]
            second = np.concatenate(sentences[split:])[
                : length - 3 - len(first)
            ]
        example = self._pack(first, second)
        self._start_example()
        return example

    def _pack(self, first, second):
        length = self.max_sequence_length
        token_ids = np.full(length, self.pad_token_id, dtype="int32")
        segment_ids = np.zeros(length, dtype="int32")
        token_ids[0] = self.cls_token_id
        end = 1 + len(first)
        token_ids[1:end] = first
        token_ids[end] = self.sep_token_id
        end += 1
        if second is not None:
            start = end
            end += len(second)
            token_ids[start:end] = second
            token_ids[end] = self.sep_token_id
            end += 1
            segment_ids[start:end] = 1
        padding_mask = np.zeros(length, dtype="int32")
        padding_mask[:end] = 1
        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
        }


def build_examples(documents, tokenizer, max_sequence_length, seed=0):
    """`ExampleBuilder(tokenizer, max_sequence_length, seed).build(documents)`.

    Args:
        documents: iterable of documents, each a list of sentence strings
            (e.g. from `read_documents`).
        tokenizer: a keras-hub WordPiece tokenizer, e.g. `ElectraTokenizer`.
        max_sequence_length: int. Length of every example.
        seed: int. Seed of the random choices.

    Returns:
        An iterator of dicts of `int32` arrays `token_ids`, `segment_ids` and
        `padding_mask`, each of shape `(max_sequence_length,)`.
    """
    return ExampleBuilder(tokenizer, max_sequence_length, seed=seed).build(
        documents
    )


def _document_stream(documents):
    for document in documents:
        if isinstance(document, (str, bytes)):
            raise ValueError(
                "Each document must be a list of sentence strings, got a "
                f"string: {document[:50]!r}."
            )
        for sentence in document:
            sentence = sentence.strip()
            if sentence:
                yield sentence
        yield _END



def _check_seed(seed):
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}.")


def _special_token_ids(tokenizer, tokens):
    vocabulary = list(tokenizer.get_vocabulary())
    missing = [token for token in tokens if token not in vocabulary]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}."
        )
    return [vocabulary.index(token) for token in tokens]


def _copy_tokenizer(tokenizer, **overrides):
    config = {
        **tokenizer.get_config(),
        "vocabulary": list(tokenizer.get_vocabulary()),
        **overrides,
    }
    return type(tokenizer).from_config(config)
