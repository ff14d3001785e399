"""The pre-training data pipeline: corpus -> vocabulary -> examples -> shards
-> batches -> `fit`.

The example builder is checked on a synthetic corpus whose sentences each
start with a marker word of their own (`m17` is sentence 17), so that every
example can be traced back to the sentences it holds.
"""

import json
import multiprocessing
import os
import pickle

import keras_hub
import numpy as np
import pytest

import keras_electra
from conftest import tiny_backbone
from keras_electra import pretraining as data

LENGTH = 32
WORDS = "the a cat dog sat ran on under big small red old tree house".split()
VOCABULARY = data.SPECIAL_TOKENS + WORDS + ["."]
PAD, UNK, CLS, SEP, MASK = range(5)


def synthetic_corpus(seed=0, num_documents=14):
    """Documents of marker sentences `m<k> word word ... .`, plus a document
    of one sentence longer than any sequence, and a one-sentence one."""
    rng = np.random.default_rng(seed)
    documents, marker = [], 0
    for _ in range(num_documents):
        document = []
        for _ in range(rng.integers(20, 160)):
            words = rng.choice(WORDS, size=rng.integers(1, 12))
            document.append(f"M{marker} " + " ".join(words) + ".")
            marker += 1
        documents.append(document)
    documents.insert(3, [f"m{marker} " + "big " * (3 * LENGTH) + "."])
    documents.insert(5, [f"m{marker + 1} red tree."])
    return documents, marker + 2


def write_corpus(folder, documents, num_files=2):
    """The documents split over `num_files` files, blank-line separated."""
    paths = []
    parts = np.array_split(np.arange(len(documents)), num_files)
    for index, part in enumerate(parts):
        path = os.path.join(folder, f"corpus-{index}.txt")
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n\n".join("\n".join(documents[i]) for i in part))
            file.write("\n")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def corpus():
    documents, num_markers = synthetic_corpus()
    vocabulary = VOCABULARY + [f"m{k}" for k in range(num_markers)]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    marker_ids = {vocabulary.index(f"m{k}"): k for k in range(num_markers)}
    # Sentence k's token ids, and the document it belongs to.
    sentences, document_of = {}, {}
    for index, document in enumerate(documents):
        for sentence in document:
            words = sentence.lower().rstrip(".").split()
            marker = int(words[0][1:])
            sentences[marker] = [vocabulary.index(w) for w in words] + [
                vocabulary.index(".")
            ]
            document_of[marker] = index
    examples = list(data.build_examples(documents, tokenizer, LENGTH, seed=0))
    return {
        "documents": documents,
        "tokenizer": tokenizer,
        "marker_ids": marker_ids,
        "sentences": sentences,
        "document_of": document_of,
        "examples": examples,
    }


@pytest.fixture(scope="module")
def shards(tmp_path_factory, corpus):
    folder = tmp_path_factory.mktemp("shards")
    files = write_corpus(folder, corpus["documents"], num_files=2)
    paths = data.write_pretraining_shards(
        files,
        corpus["tokenizer"],
        folder / "out",
        max_sequence_length=LENGTH,
        num_shards=3,
        num_workers=1,
        verbose=0,
    )
    return {"files": files, "paths": paths, "folder": folder / "out"}


def segments(example):
    token_ids = example["token_ids"]
    seps = np.flatnonzero(token_ids == SEP)
    first = token_ids[1 : seps[0]]
    second = token_ids[seps[0] + 1 : seps[1]] if len(seps) == 2 else None
    return first, second


def sentences_of(tokens, corpus):
    """Split a segment at its markers: [(marker, tokens), ...]."""
    starts = [i for i, t in enumerate(tokens) if t in corpus["marker_ids"]]
    assert starts and starts[0] == 0, "a segment starts with a sentence"
    ends = starts[1:] + [len(tokens)]
    return [
        (corpus["marker_ids"][tokens[s]], list(tokens[s:e]))
        for s, e in zip(starts, ends)
    ]


def uses_last_sentence(example, corpus):
    """Whether the example holds the last sentence of its document."""
    markers = [corpus["marker_ids"][t] for t in example["token_ids"]
               if t in corpus["marker_ids"]]
    last = markers[-1]
    return corpus["document_of"].get(last + 1) != corpus["document_of"][last]


# === Examples ===


def test_examples_are_well_formed(corpus):
    examples = corpus["examples"]
    assert len(examples) > 300
    for example in examples:
        assert set(example) == {"token_ids", "segment_ids", "padding_mask"}
        for value in example.values():
            assert value.dtype == np.int32 and value.shape == (LENGTH,)
        token_ids, segment_ids = example["token_ids"], example["segment_ids"]
        padding_mask = example["padding_mask"]
        real = int(padding_mask.sum())
        np.testing.assert_array_equal(padding_mask, token_ids != PAD)
        np.testing.assert_array_equal(padding_mask[:real], 1)
        assert token_ids[0] == CLS and token_ids[real - 1] == SEP
        assert not np.isin(token_ids[1:], [CLS, UNK, MASK]).any()
        seps = np.flatnonzero(token_ids == SEP)
        assert len(seps) in (1, 2)
        # Segment ids: 0 up to the first [SEP], 1 after it, 0 on padding.
        expected = np.zeros(LENGTH, "int32")
        if len(seps) == 2:
            assert seps[0] > 1 and seps[1] == real - 1 > seps[0] + 1
            expected[seps[0] + 1 : real] = 1
        np.testing.assert_array_equal(segment_ids, expected)


def test_every_sentence_is_used_once_in_order(corpus):
    """Segments are runs of consecutive sentences of one document; only the
    last sentence of an example may be cut, never left out."""
    seen = []
    for example in corpus["examples"]:
        pieces = []
        for segment in segments(example):
            if segment is not None:
                pieces += sentences_of(segment, corpus)
        markers = [marker for marker, _ in pieces]
        assert markers == list(range(markers[0], markers[0] + len(markers)))
        assert len({corpus["document_of"][m] for m in markers}) == 1
        for position, (marker, tokens) in enumerate(pieces):
            source = corpus["sentences"][marker]
            if position < len(pieces) - 1:
                assert tokens == source
            else:
                assert tokens == source[: len(tokens)]
        seen += markers
    in_corpus_order = [
        int(sentence.split()[0][1:])
        for document in corpus["documents"]
        for sentence in document
    ]
    assert seen == in_corpus_order


def test_segment_and_length_statistics(corpus):
    examples = corpus["examples"]
    pairs = singles = short = 0
    for example in examples:
        first, second = segments(example)
        multi_sentence = len(sentences_of(first, corpus)) > 1 or (
            second is not None
        )
        if multi_sentence:
            pairs += second is not None
            singles += second is None
        if second is not None:
            # A: about half of the content, B: the rest.
            assert len(first) < (LENGTH - 3) // 2 + 13
        if not uses_last_sentence(example, corpus):
            short += example["padding_mask"].sum() < LENGTH
    # ~10% single-segment examples (among those that could be pairs) and
    # ~5% short ones (a short target may still fill the sequence).
    assert 0.04 < singles / (pairs + singles) < 0.18
    assert 2 <= short <= 0.12 * len(examples)


def test_no_short_targets_fill_every_sequence(corpus):
    builder = data.ExampleBuilder(
        corpus["tokenizer"], LENGTH, seed=0, short_sequence_rate=0.0,
        single_segment_rate=1.0,
    )
    examples = list(builder.build(corpus["documents"]))
    for example in examples:
        assert (example["token_ids"] == SEP).sum() == 1
        assert example["segment_ids"].max() == 0
        if not uses_last_sentence(example, corpus):
            assert example["padding_mask"].sum() == LENGTH


def test_over_long_sentence_is_truncated_not_dropped(corpus):
    long_marker = max(corpus["sentences"]) - 1
    matches = [
        ex for ex in corpus["examples"]
        if corpus["marker_ids"].get(ex["token_ids"][1]) == long_marker
    ]
    assert len(matches) == 1
    np.testing.assert_array_equal(
        matches[0]["token_ids"][1:-1],
        corpus["sentences"][long_marker][: LENGTH - 2],
    )
    # Alone, too, and at the smallest length.
    tokenizer = corpus["tokenizer"]
    examples = list(
        data.build_examples([["big " * 50]], tokenizer, max_sequence_length=5)
    )
    assert [list(ex["token_ids"]) for ex in examples] == [
        [CLS] + [VOCABULARY.index("big")] * 3 + [SEP]
    ]


def test_examples_are_deterministic_given_seed(corpus):
    documents, tokenizer = corpus["documents"], corpus["tokenizer"]

    def token_ids(seed):
        return np.stack([
            ex["token_ids"]
            for ex in data.build_examples(documents, tokenizer, LENGTH, seed)
        ])

    again = token_ids(0)
    reference = np.stack([ex["token_ids"] for ex in corpus["examples"]])
    np.testing.assert_array_equal(again, reference)
    other = token_ids(1)
    assert other.shape != reference.shape or (other != reference).any()


def test_builder_arguments_are_checked(corpus):
    tokenizer = corpus["tokenizer"]
    with pytest.raises(ValueError, match="max_sequence_length"):
        data.ExampleBuilder(tokenizer, 4)
    with pytest.raises(ValueError, match="single_segment_rate"):
        data.ExampleBuilder(tokenizer, 16, single_segment_rate=1.5)
    no_sep = keras_hub.tokenizers.WordPieceTokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "a"]
    )
    with pytest.raises(ValueError, match=r"\[SEP\]"):
        data.ExampleBuilder(no_sep, 16)
    with pytest.raises(ValueError, match="list of sentence"):
        list(data.build_examples(["one document"], tokenizer, 16))


# === Vocabulary ===


def test_train_vocabulary(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("Héllo WORLD, hello world.\nCafé au lait!\n" * 30,
                    encoding="utf-8")
    output = tmp_path / "vocab" / "vocab.txt"
    vocabulary = data.train_vocabulary(str(path), 60, output_path=output)
    assert vocabulary[:5] == data.SPECIAL_TOKENS
    assert len(set(vocabulary)) == len(vocabulary) <= 60
    assert "hello" in vocabulary and "world" in vocabulary
    learned = vocabulary[len(data.SPECIAL_TOKENS):]
    assert not any(ch.isupper() or ch in "éÉ" for t in learned for ch in t)
    assert data.load_vocabulary(output) == vocabulary
    assert os.listdir(output.parent) == ["vocab.txt"]  # no temporary file
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    assert UNK not in list(tokenizer("Hello café world!"))

    cased = data.train_vocabulary([path], 60, lowercase=False)
    assert "H" in cased and "é" in cased
    accented = data.train_vocabulary([path], 60, strip_accents=False)
    assert "é" in accented and "H" not in accented


def zipf_text(num_words, seed=0):
    """Lines of Zipf-distributed words that share stems and endings, with
    accents, digits, CJK and punctuation (`#` too, the joiner's character)."""
    rng = np.random.default_rng(seed)
    stems = ["trans", "form", "électr", "pre", "dis", "crim", "in", "at",
             "ör", "東京", "9"]
    endings = ["", "s", "ing", "ed", "ation", "or", "ly", "#", "!"]
    lexicon = sorted({
        "".join(rng.choice(stems, size=rng.integers(1, 4))) + rng.choice(endings)
        for _ in range(600)
    })
    ranks = np.minimum(rng.zipf(1.3, num_words), len(lexicon)) - 1
    words = [lexicon[rank] for rank in ranks]
    return "".join(
        " ".join(words[i : i + 12]) + "\n" for i in range(0, num_words, 12)
    )


@pytest.mark.parametrize("vocabulary_size", [80, 150, 400])
def test_train_vocabulary_is_keras_hubs(tmp_path, vocabulary_size):
    """The vocabulary `compute_word_piece_vocabulary` learns, from our own
    faster learner, at sizes that stop its threshold search at different
    places."""
    path = tmp_path / "text.txt"
    path.write_text(zipf_text(30_000), encoding="utf-8")
    expected = keras_hub.tokenizers.compute_word_piece_vocabulary(
        [str(path)],
        vocabulary_size,
        lowercase=True,
        strip_accents=True,
        reserved_tokens=data.SPECIAL_TOKENS,
    )
    vocabulary = data.train_vocabulary(path, vocabulary_size, verbose=0)
    assert vocabulary == expected
    assert any(token.startswith("##") and len(token) > 3 for token in vocabulary)


def test_train_vocabulary_with_few_distinct_words_keeps_the_alphabet(tmp_path):
    """Past `max_distinct_words`, rare words are dropped but their
    characters stay, and the most frequent words are still learned."""
    path = tmp_path / "text.txt"
    path.write_text(zipf_text(30_000), encoding="utf-8")
    exact = data.train_vocabulary(path, 150, verbose=0)
    bounded = data.train_vocabulary(
        path, 150, max_distinct_words=40, verbose=0
    )
    assert bounded != exact
    alphabet = {token for token in exact if len(token) == 1}
    assert alphabet == {token for token in bounded if len(token) == 1}
    # Past the special tokens and the characters: pieces by frequency.
    frequent = [token for token in exact if len(token) > 1][5:10]
    assert set(frequent) <= set(bounded)


def test_train_vocabulary_errors(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("The quick brown fox jumps over the lazy dog.\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match="vocabulary_size"):
        data.train_vocabulary([path], 5)
    with pytest.raises(ValueError, match="too small for the alphabet"):
        data.train_vocabulary([path], 40)  # 27 characters: 59 tokens
    (tmp_path / "blank.txt").write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no text"):
        data.train_vocabulary([tmp_path / "blank.txt"], 50)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        data.train_vocabulary([tmp_path / "missing.txt"], 50)


def test_load_vocabulary(tmp_path):
    bert = ["[PAD]"] + [f"[unused{i}]" for i in range(99)]
    bert += ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"]
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in bert), encoding="utf-8")
    assert data.load_vocabulary(path) == bert
    path.write_text("[PAD]\n[UNK]\n[CLS]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\['\[SEP\]', '\[MASK\]'\]"):
        data.load_vocabulary(path)


# === Reading the corpus ===


def test_read_documents_format(tmp_path):
    first = tmp_path / "a.txt"
    first.write_bytes(
        b"\xef\xbb\xbfOne.\r\n  Two.  \n\n\n \t\nThree.\nFour.\n\n"
    )
    second = tmp_path / "b.txt"
    second.write_text("Five.\nSix.", encoding="utf-8")
    (tmp_path / "c.txt").write_text("\n\n", encoding="utf-8")
    assert list(data.read_documents([first, second, tmp_path / "c.txt"])) == [
        ["One.", "Two."], ["Three.", "Four."], ["Five.", "Six."]
    ]
    assert len(list(data.read_documents(str(tmp_path / "*.txt")))) == 3
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        data.read_documents([first, tmp_path / "nope.txt"])
    with pytest.raises(ValueError, match="errors"):
        data.read_documents([first], errors="ignore")


def test_non_utf8_file_strict_or_skipped(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Valid line.\nAnother \xff line.\n")
    with pytest.raises(ValueError, match=r"bad\.txt.*offset 20"):
        list(data.read_documents([good, bad]))
    with pytest.warns(UserWarning, match=r"bad\.txt"):
        documents = list(data.read_documents([bad, good], errors="skip"))
    assert documents == [["Fine text."]]

    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"bad\.txt"):
        data.write_pretraining_shards(
            [good, bad], tokenizer, out, max_sequence_length=8, num_shards=2,
            num_workers=1, verbose=0,
        )
    assert os.listdir(out) == []  # no half-written shard, no metadata
    with pytest.warns(UserWarning, match=r"bad\.txt"):
        data.write_pretraining_shards(
            [good, bad], tokenizer, out, max_sequence_length=8, num_shards=2,
            num_workers=1, errors="skip", verbose=0,
        )
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["num_examples"] == 1
    # A failed run leaves the last complete one as it was.
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    with pytest.raises(ValueError, match=r"bad\.txt"):
        data.write_pretraining_shards(
            [good, bad], tokenizer, out, max_sequence_length=8, num_shards=2,
            num_workers=1, verbose=0,
        )
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == (
        before
    )


def test_empty_corpus_is_an_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    assert list(data.read_documents(empty)) == []
    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)
    with pytest.raises(ValueError, match="no example"):
        data.write_pretraining_shards(
            [empty], tokenizer, tmp_path / "out", num_workers=1, verbose=0
        )
    assert os.listdir(tmp_path / "out") == []


# === Shards and the dataset ===


def test_shards_round_trip(shards, corpus):
    folder = shards["folder"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert sorted(os.listdir(folder)) == sorted(
        metadata["shards"] + ["metadata.json"]
    )  # nothing temporary left behind
    assert [os.path.basename(p) for p in shards["paths"]] == metadata["shards"]
    assert metadata["max_sequence_length"] == LENGTH
    assert metadata["vocabulary_size"] == len(
        corpus["tokenizer"].get_vocabulary()
    )
    counts = metadata["examples_per_shard"]
    assert max(counts) - min(counts) <= 1  # round-robin
    assert sum(counts) == metadata["num_examples"]

    dataset = data.pretraining_dataset(
        folder, batch_size=16, shuffle_buffer=0, repeat=False,
        drop_remainder=False,
    )
    batches = list(dataset.as_numpy_iterator())
    token_ids = np.concatenate([b["token_ids"] for b in batches])
    padding_mask = np.concatenate([b["padding_mask"] for b in batches])
    assert batches[0]["segment_ids"].dtype == np.int32
    assert token_ids.shape == (metadata["num_examples"], LENGTH)
    assert padding_mask.sum() == metadata["num_tokens"]
    # Every sentence is in the shards, once.
    markers = token_ids[np.isin(token_ids, list(corpus["marker_ids"]))]
    assert sorted(markers.tolist()) == sorted(corpus["marker_ids"])

    # A glob or a list of the shards reads the same examples.
    for shards_argument in (str(folder / "*.tfrecord"), shards["paths"]):
        again = data.pretraining_dataset(
            shards_argument, batch_size=16, shuffle_buffer=0, repeat=False,
            drop_remainder=False,
        )
        assert sum(len(b["token_ids"]) for b in again.as_numpy_iterator()) == (
            metadata["num_examples"]
        )


class InProcessPool:
    """Stands in for a `spawn` pool: runs the tasks in this process, but
    pickles all that would cross a process boundary, and records the
    environment the workers would start with."""

    environment = None

    def __init__(self, processes, initializer, initargs):
        InProcessPool.environment = dict(os.environ)
        initializer(*pickle.loads(pickle.dumps(initargs)))

    def imap(self, function, tasks):
        function = pickle.loads(pickle.dumps(function))
        for task in tasks:
            result = function(pickle.loads(pickle.dumps(task)))
            yield pickle.loads(pickle.dumps(result))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


def workers_in_this_process(monkeypatch):
    """`multiprocessing`'s `spawn` context with `InProcessPool` for its
    pool; returns the list of the contexts asked for, as they are."""
    asked = []

    def get_context(method):
        asked.append(method)
        if method != "spawn":
            return None
        return type("Spawn", (), {"Pool": InProcessPool})

    monkeypatch.setattr(multiprocessing, "get_context", get_context)
    return asked


def same_output(folder, other, ignore=("seconds",)):
    """The same shard bytes and metadata (but for the time taken)."""
    metadata = [
        json.loads((f / "metadata.json").read_text()) for f in (folder, other)
    ]
    for record in metadata:
        for key in ignore:
            record.pop(key)
    assert metadata[0] == metadata[1]
    for name in metadata[0]["shards"]:
        assert (folder / name).read_bytes() == (other / name).read_bytes()


def test_workers_write_the_same_shards(shards, corpus, tmp_path, monkeypatch):
    """Examples are dealt out in file order whoever builds them, and a
    skipped file is reported from the workers too."""
    workers_in_this_process(monkeypatch)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\n")
    before = dict(os.environ)
    with pytest.warns(UserWarning, match=r"bad\.txt"):
        data.write_pretraining_shards(
            shards["files"] + [bad], corpus["tokenizer"], tmp_path / "out",
            max_sequence_length=LENGTH, num_shards=3, num_workers=2,
            errors="skip", verbose=0,
        )
    # Workers: TensorFlow only, one thread, no GPU; this process unchanged.
    assert InProcessPool.environment["KERAS_BACKEND"] == "tensorflow"
    assert InProcessPool.environment["TF_NUM_INTRAOP_THREADS"] == "1"
    assert InProcessPool.environment["CUDA_VISIBLE_DEVICES"] == ""
    assert dict(os.environ) == before
    same_output(
        shards["folder"], tmp_path / "out", ignore=("seconds", "source_files")
    )
    assert len(os.listdir(tmp_path / "out")) == 4  # 3 shards, metadata


@pytest.mark.parametrize("in_process_bytes", [None, 0])
def test_workers_only_for_a_corpus_worth_their_start(
    shards, corpus, tmp_path, monkeypatch, in_process_bytes
):
    pools = workers_in_this_process(monkeypatch)
    monkeypatch.setattr(data.shards, "_cpu_count", lambda: 4)
    if in_process_bytes is not None:
        monkeypatch.setattr(data.shards, "IN_PROCESS_BYTES", in_process_bytes)
    data.write_pretraining_shards(
        shards["files"], corpus["tokenizer"], tmp_path, num_shards=3,
        max_sequence_length=LENGTH, verbose=0,
    )
    # The fixture's few kB: packed here. Past the threshold: in workers.
    assert pools == ([] if in_process_bytes is None else ["spawn"])
    same_output(shards["folder"], tmp_path, ignore=("seconds", "source_files"))


@pytest.mark.skipif(
    not os.environ.get("ELECTRA_TEST_WORKER_PROCESSES"),
    reason="starts real worker processes (about 10 s of imports each); set "
    "ELECTRA_TEST_WORKER_PROCESSES=1 to run",
)
def test_worker_processes(shards, corpus, tmp_path):
    data.write_pretraining_shards(
        shards["files"], corpus["tokenizer"], tmp_path, num_shards=3,
        max_sequence_length=LENGTH, num_workers=2, verbose=0,
    )
    same_output(shards["folder"], tmp_path)


def test_dataset_is_deterministic_and_resumable(shards):
    def first_batches(seed, skip=0, count=4):
        dataset = data.pretraining_dataset(
            shards["folder"], batch_size=8, shuffle_buffer=64, seed=seed
        )
        return [
            b["token_ids"]
            for b in dataset.skip(skip).take(count).as_numpy_iterator()
        ]

    reference = first_batches(0, count=5)
    assert all(b.shape == (8, LENGTH) for b in reference)
    np.testing.assert_array_equal(first_batches(0), reference[:4])
    np.testing.assert_array_equal(
        first_batches(0, skip=3, count=2), reference[3:]
    )
    assert not np.array_equal(first_batches(1), reference[:4])


def test_dataset_errors(shards, tmp_path):
    with pytest.raises(ValueError, match="No shard file matches"):
        data.pretraining_dataset(str(tmp_path / "*.tfrecord"), batch_size=2)
    with pytest.raises(ValueError, match="metadata.json"):
        data.pretraining_dataset(tmp_path, batch_size=2)
    with pytest.raises(ValueError, match="length 32"):
        data.pretraining_dataset(
            shards["folder"], batch_size=2, max_sequence_length=64
        )
    # Shards away from their metadata: the length is read from an example.
    alone = tmp_path / "alone.tfrecord"
    alone.write_bytes(open(shards["paths"][0], "rb").read())
    with pytest.raises(ValueError, match="length 32"):
        data.pretraining_dataset(alone, batch_size=2, max_sequence_length=16)


def test_vocabulary_shards_dataset_fit(tmp_path, corpus):
    """The whole pipeline on a trained vocabulary, into two steps of fit."""
    files = write_corpus(tmp_path, corpus["documents"][:4], num_files=1)
    vocabulary = data.train_vocabulary(files, 200)
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    data.write_pretraining_shards(
        files, tokenizer, tmp_path / "shards", max_sequence_length=LENGTH,
        num_shards=2, verbose=0,
    )
    dataset = data.pretraining_dataset(tmp_path / "shards", batch_size=4)
    pretrainer = keras_electra.ElectraPretrainer(
        tiny_backbone(vocab_size=len(vocabulary)),
        generator_size=0.5,
        tokenizer=tokenizer,
        seed=0,
    )
    pretrainer.compile()
    history = pretrainer.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
