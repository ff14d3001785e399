"""The movie-review task's own text as a pre-training corpus (task-adaptive
pre-training, as the demo does it): `write_in_domain_corpus`."""

from keras_electra.data.corpora import split_sentences
from keras_electra.utils.file_io import write_text_atomically


def write_in_domain_corpus(reviews, path):
    """Write the training reviews and the plot summaries as a corpus file.

    The training snippets grouped by film (one document per film, films in
    name order), then the unlabelled plot summaries (one document each, cut
    into sentences); no dev or test text. One sentence per line, a blank
    line after every document.

    Args:
        reviews: the dict `movie_reviews()` returns (its `train` split's
            `texts` and `movie_names`, and `unlabeled`).
        path: str. The corpus file to write.

    Returns:
        `path`.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.data.in_domain import write_in_domain_corpus

    reviews = {
        "train": {"texts": ["Fun.", "Dull."], "movie_names": ["b", "a"]},
        "unlabeled": ["A plot. It ends well."],
    }
    path = write_in_domain_corpus(
        reviews, os.path.join(tempfile.mkdtemp(), "in_domain.txt")
    )
    open(path).read()  # 'Dull.\\n\\nFun.\\n\\nA plot.\\nIt ends well.\\n\\n'
    ```
    """
    for key in ("train", "unlabeled"):
        if key not in reviews:
            raise ValueError(
                f"`reviews` needs '{key}' (as `movie_reviews()` returns); got "
                f"{sorted(reviews)}."
            )
    train = reviews["train"]
    by_movie = {}
    for text, movie in zip(train["texts"], train["movie_names"]):
        by_movie.setdefault(movie, []).append(text)
    documents = [snippets for _, snippets in sorted(by_movie.items())]
    documents += [split_sentences(plot) for plot in reviews["unlabeled"]]
    text = ""
    for document in documents:
        lines = [" ".join(s.split()) for s in document if s.strip()]
        if lines:
            text += "\n".join(lines) + "\n\n"
    write_text_atomically(path, text)
    return path
