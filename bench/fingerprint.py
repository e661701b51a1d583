"""Fingerprint index: detection of indexed code, false matches, indexing speed, lookup, size.

    .venv/bin/python bench/fingerprint.py [--fp-snippets 400] [--fp-negatives 3000] [--fp-quick]
                                          [--fp-seed 20261123]

"Company code" is the source of large installed packages (mitmproxy, textual, rich, pygments,
spaCy, numpy, ...: about a million lines), indexed with the real `index_paths` into a SQLite
store in a temporary folder; "company documents" are half of the system's /usr/share/doc texts.
Detection: random 10-line snippets of the indexed Python files (at least 5 non-blank lines),
as they are, with identifiers renamed (the whole file renamed with `tokenize`: every name that is
not a keyword, builtin, dunder, imported name, attribute name or keyword-argument name of a call
gets a new one, consistently), with lines
reformatted (tabs for indentation, spacing around commas and `=`, quote style), and both; and
10-line snippets of the indexed documents. False matches: 10-line snippets of other packages and
of the standard library (not indexed) and of the other half of /usr/share/doc plus the package
descriptions of unindexed packages. Everything is sampled with a fixed seed; a snippet counts as
detected when the detector returns any finding for it.
"""

from __future__ import annotations

import argparse
import builtins
import difflib
import gzip
import io
import keyword
import random
import re
import statistics
import sys
import tempfile
import time
import tokenize
import zlib
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import Section, ratio, run_alone, table

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / ".venv" / "lib" / "python3.12" / "site-packages"
INDEXED = (
    "mitmproxy", "textual", "rich", "sqlite_utils", "pygments", "spacy", "numpy", "pip",
    "setuptools", "pypdf", "anthropic",
)  # fmt: skip
QUICK_INDEXED = ("mitmproxy", "textual", "rich", "sqlite_utils")
OTHER = (
    "_pytest", "httpx", "urllib3", "werkzeug", "cryptography", "pydantic", "presidio_analyzer",
    "fastapi", "flask", "click", "aioquic",
)  # fmt: skip
# Public code a company builds on, registered as an allow-list (`index add --public`) for the
# background rows: installed packages that are neither company code nor among OTHER (nor the
# standard library, which is among the unindexed code), and the system's licence texts.
PUBLIC = (
    "tornado", "thinc", "jinja2", "requests", "anyio", "attrs", "attr", "pyparsing", "ruamel",
    "urwid", "tqdm", "dateutil", "pycparser", "typer", "h2", "hpack", "hyperframe", "wsproto",
    "markdown_it", "mdurl", "ldap3", "sortedcontainers", "packaging", "yaml", "srsly", "weasel",
    "confection", "cloudpathlib", "pluggy", "wrapt", "tabulate", "tldextract", "onnxruntime",
    "catalogue", "wasabi", "smart_open", "platformdirs", "filelock", "msgpack",
    "charset_normalizer", "idna", "certifi", "cffi", "pyasn1", "asgiref", "linkify_it",
    "mdit_py_plugins", "shellingham",
)  # fmt: skip
LICENCES = Path("/usr/share/common-licenses")
DOCS = Path("/usr/share/doc")
SEED = 20261123
KB = 1024
LINE_STARTS = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)
KEEP = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"self", "cls"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fp-snippets", type=int, default=400, help="snippets per variant")
    parser.add_argument("--fp-negatives", type=int, default=3000, help="negatives per set")
    parser.add_argument("--fp-lookups", type=int, default=300, help="timed 2 KB lookups per kind")
    parser.add_argument("--fp-quick", action="store_true", help="small index, for a smoke test")
    parser.add_argument("--fp-seed", type=int, default=SEED, help="seed of every sample")


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return []
    return raw.decode("utf-8", "replace").splitlines()


def _sample(pool: list[tuple[Path, list[str]]], n: int, rng: random.Random) -> list[tuple]:
    """(path, first line, the 10 lines) of `n` snippets, every line equally likely to start one."""
    weights = [max(0, len(lines) - 9) for _, lines in pool]
    out: list[tuple] = []
    tries = 0
    while len(out) < n and tries < n * 50 and any(weights):
        tries += 1
        path, lines = rng.choices(pool, weights)[0]
        start = rng.randrange(len(lines) - 9)
        chunk = lines[start : start + 10]
        if sum(1 for x in chunk if x.strip()) >= 5:
            out.append((path, start, "\n".join(chunk)))
    return out


def renamed(text: str) -> str:
    """The file with its own names renamed consistently, as a person renaming would: names that
    belong to someone else's interface are kept everywhere in the file (keywords, builtins,
    dunder names such as `__init__`, imported names, attribute names: every name that follows a
    dot somewhere, so a method keeps its name where it is defined too, and keyword-argument
    names of calls, `f(dtype=x)`, so a parameter that callers name keeps its name too)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    kept = _interface_names(tokens)
    lines = io.StringIO(text).readlines()  # tokenize's lines: a form feed does not end one
    names: dict[str, str] = {}
    taken = set(kept)  # a new name is never one the file keeps
    for i in range(len(tokens) - 1, -1, -1):
        t = tokens[i]
        if t.type != tokenize.NAME or t.string in kept or tokens[i - 1].string == "!":
            continue  # (after `!`: an f-string's conversion, `{x!r}`)
        if t.string.startswith("__") and t.string.endswith("__"):  # Python's own protocol
            continue
        new = names.get(t.string) or _new_name(t.string, taken)
        names[t.string] = new
        taken.add(new)
        (row, col), (_, end) = t.start, t.end
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][end:]
    return "".join(lines)


def _new_name(name: str, taken: set[str]) -> str:
    """A new name for `name`, never one already given to another name (two names made one
    would change what the code does)."""
    new = f"n{zlib.crc32(name.encode()) % 99991}"
    while new in taken:
        new += "x"
    return new


def _interface_names(tokens: list[tokenize.TokenInfo]) -> set[str]:
    """Names a consistent renaming must leave alone: keywords and builtins (KEEP), names in
    import statements, names after a dot, and keyword-argument names in calls (a `name=` inside
    parentheses that are not a `def`'s parameter list)."""
    kept = set(KEEP)
    in_import = False
    brackets: list[bool] = []  # per open bracket: is it a call's (or class bases') parentheses
    for i, t in enumerate(tokens):
        before = tokens[i - 1] if i else t
        starts_line = i == 0 or before.type in LINE_STARTS
        if t.type == tokenize.NAME and t.string in ("import", "from") and starts_line:
            in_import = True
        elif t.type == tokenize.NEWLINE:
            in_import = False
        if t.type == tokenize.NAME and (in_import or before.string == "."):
            kept.add(t.string)
        if t.type != tokenize.OP:
            continue
        if t.string in "([{":
            defines = i >= 2 and tokens[i - 2].string == "def"
            brackets.append(t.string == "(" and not defines)
        elif t.string in ")]}" and brackets:
            brackets.pop()
        elif t.string == "=" and brackets and brackets[-1] and before.type == tokenize.NAME:
            kept.add(before.string)
    return kept


_STRING = r"(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
_SPACING = re.compile(_STRING + r"|(\s*,\s*)|(\s*(?<![=!<>+\-*/%&|^:])=(?!=)\s*)|( {2,})")


def _respace(m: re.Match[str]) -> str:
    if m.group(1):
        s = m.group(1)
        return '"' + s[1:-1] + '"' if s[0] == "'" and '"' not in s else s
    if m.group(2):
        return ","
    return " = " if m.group(3) else " "


def reformatted(snippet: str) -> str:
    """Tabs for indentation, no space after commas, spaces around `=`, double quotes."""
    out = []
    for line in snippet.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        out.append("\t" * (indent // 4) + _SPACING.sub(_respace, line.strip()))
    return "\n".join(out)


def _code_files(packages: tuple[str, ...]) -> list[Path]:
    from dlpproxy.fingerprint.sources import Skip, candidates, kind_of

    out = []
    for name in packages:
        for item in candidates(SITE / name):
            if not isinstance(item, Skip) and kind_of(item) == "code" and item.suffix == ".py":
                out.append(item)
    return out


def _stdlib_files() -> list[Path]:
    lib = Path(random.__file__).parent
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__"}
    return [p for p in lib.rglob("*.py") if not skip & set(p.relative_to(lib).parts)]


def _source_package(folder: Path) -> str:
    """The Debian source package a doc folder comes from (its changelog's first word): binary
    packages of one source share their texts, so they must land on the same side."""
    for name in ("changelog.Debian.gz", "changelog.gz"):
        lines = _lines(folder / name) if (folder / name).is_file() else []
        if lines and lines[0].split():
            return lines[0].split()[0]
    return folder.name


def _doc_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """Half of /usr/share/doc's source packages (by a hash of the name) become company
    documents, copied (decompressed) under `folder`; the other half's texts are ordinary prose."""
    from dlpproxy.fingerprint.sources import LICENCE_NAME

    indexed, other = [], []
    sources: dict[str, str] = {}
    for path in sorted(DOCS.rglob("*")) if DOCS.is_dir() else []:
        if not path.is_file() or path.is_symlink() or LICENCE_NAME.match(path.name):
            continue
        if path.suffix not in ("", ".gz", ".txt", ".md", ".rst", ".Debian", ".markdown"):
            continue
        package = path.relative_to(DOCS).parts[0]
        if package not in sources:
            sources[package] = _source_package(DOCS / package)
        if zlib.crc32(sources[package].encode()) % 2:
            other.append(path)
            continue
        lines = _lines(path)
        if len(lines) >= 10:
            name = path.relative_to(DOCS).as_posix().replace("/", "__").removesuffix(".gz")
            copy = folder / f"{name}.txt"
            copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
            indexed.append(copy)
    return indexed, other


def _metadata(packages: tuple[str, ...]) -> list[Path]:
    """Package descriptions (their READMEs) of the unindexed packages."""
    found = []
    for meta in SITE.glob("*.dist-info/METADATA"):
        name = meta.parent.name.split("-")[0].lower()
        if any(name == p.lower().lstrip("_") for p in packages):
            found.append(meta)
    return found


def _build(folder: Path, packages: tuple[str, ...]) -> dict[str, object]:
    """Index the packages (code) and the document half; time, lines, sizes."""
    from dlpproxy.fingerprint.indexer import index_paths
    from dlpproxy.fingerprint.store import FingerprintStore

    docs = folder / "docs"
    docs.mkdir()
    doc_files, prose_files = _doc_split(docs)
    db = folder / "fp.db"
    with FingerprintStore(db, create=True) as store:
        began = time.perf_counter()
        code = index_paths(store, [SITE / p for p in packages], "code", 8 * 1024 * 1024)
        code_s = time.perf_counter() - began
        documents = index_paths(store, [docs], "documents", 8 * 1024 * 1024)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # snippets come from what the index holds: files it left out (generated, too large,
        # binary) are counted in `skipped`, not sampled
        held = {p for label in ("code", "documents") for p in store.files_of(label)}
    source = code.bytes + documents.bytes
    return {
        "db": db, "prose_files": prose_files,
        "code_held": sorted(Path(p) for p in held if p.endswith(".py")),
        "doc_files": [p for p in doc_files if str(p.absolute()) in held],
        "skipped": {"code": dict(code.skipped), "documents": dict(documents.skipped)},
        "code_files": code.indexed, "code_lines": code.lines, "code_bytes": code.bytes,
        "code_seconds": round(code_s, 2), "doc_count": documents.indexed,
        "doc_lines": documents.lines, "source_bytes": source,
        "store_bytes": db.stat().st_size,
        "fingerprints": code.fingerprints + documents.fingerprints,
    }  # fmt: skip


def _verbatim_copy(text: str, findings: list) -> bool:
    """Is the flagged snippet a real copy: 3 consecutive non-blank lines of it (stripped) also
    stand consecutively in the file it matched? (Packages do copy each other: pip's option
    parser from optparse, numpy's inspect from inspect, X.org changelogs from one another.)"""
    snippet = [x.strip() for x in text.splitlines() if x.strip()]
    for f in findings:
        path = Path(f.rule.split(":", 1)[1])
        try:
            lines = [x.strip() for x in path.read_text("utf-8", "replace").splitlines()]
        except OSError:
            continue
        joined = "\n" + "\n".join(x for x in lines if x) + "\n"
        for i in range(len(snippet) - 2):
            if "\n" + "\n".join(snippet[i : i + 3]) + "\n" in joined:
                return True
    return False


# A flagged snippet is a copy of the file it matched when at least COPY_SHARE of its words stand in
# that file in the same order, in runs of at least COPY_RUN words, within a stretch of the file
# no longer than COPY_STRETCH times the snippet: re-wrapped or lightly edited copies too, and a
# test that knows nothing of fingerprints (words as written, no renaming, no hashes).
COPY_SHARE = 0.7
COPY_RUN = 4
COPY_STRETCH = 2
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def copied_share(snippet: str, source: str) -> float:
    """The share of the snippet's words found in `source` in the same order (difflib's matching
    blocks of COPY_RUN words or more), in the best stretch of `source` of at most COPY_STRETCH
    times the snippet's length in words."""
    words = _words(snippet)
    if not words:
        return 0.0
    matcher = difflib.SequenceMatcher(None, _words(source), words, autojunk=False)
    runs = [(a, size) for a, _, size in matcher.get_matching_blocks() if size >= COPY_RUN]
    reach = COPY_STRETCH * len(words)
    best = 0
    for i, (first, _) in enumerate(runs):
        inside = [size for a, size in runs[i:] if a + size <= first + reach]
        best = max(best, sum(inside))
    return best / len(words)


def _copy_of_indexed(text: str, findings: list) -> bool:
    """Is the flagged snippet a copy (re-wrapped, re-indented or lightly edited too) of a file
    it matched? See COPY_SHARE."""
    for f in findings:
        path = Path(f.rule.split(":", 1)[1])
        try:
            source = path.read_text("utf-8", "replace")
        except OSError:
            continue
        if copied_share(text, source) >= COPY_SHARE:
            return True
    return False


def _high(findings: list) -> bool:
    """Would the shipped policy block it? (`block-internal-code` acts on high-severity
    internal code; document findings are only monitored.)"""
    return any(f.severity == "high" and f.category == "internal_code" for f in findings)


def _detected(detect, texts: list[str]) -> int:
    return sum(1 for t in texts if detect(t))


def _pool(paths: list[Path]) -> list[tuple[Path, list[str]]]:
    return [(p, lines) for p in paths if len(lines := _lines(p)) >= 10]


def _variants(pool, n: int, rng: random.Random) -> dict[str, list[str]]:
    """The same snippets as they are, renamed, reformatted and both."""
    renamed_lines: dict[Path, list[str] | None] = {}
    variants: dict[str, list[str]] = {"as is": [], "renamed": [], "reformatted": [], "both": []}
    for path, start, text in _sample(pool, n * 2, rng):
        if path not in renamed_lines:
            try:
                renamed_lines[path] = renamed(path.read_text("utf-8")).splitlines()
            except (SyntaxError, tokenize.TokenError, UnicodeDecodeError, IndentationError):
                renamed_lines[path] = None
        lines = renamed_lines[path]
        if lines is None or len(variants["as is"]) >= n:
            continue
        other = "\n".join(lines[start : start + 10])
        variants["as is"].append(text)
        variants["renamed"].append(other)
        variants["reformatted"].append(reformatted(text))
        variants["both"].append(reformatted(other))
    return variants


def _prompts(pool, n: int, rng: random.Random) -> list[str]:
    """`n` prompts of about 2 KB (UTF-8) of consecutive lines from the pool."""
    out = []
    big = [(p, lines) for p, lines in pool if sum(len(x) + 1 for x in lines) > 3 * KB]
    while len(out) < n and big:
        _, lines = rng.choice(big)
        start = rng.randrange(len(lines))
        text = ""
        for line in lines[start:]:
            if len((text + line).encode()) > 2 * KB:
                break
            text += line + "\n"
        if len(text.encode()) > 1.5 * KB:
            out.append(text)
    return out


def _latency(detect, pools: dict[str, list], n: int, rng: random.Random) -> dict[str, object]:
    out: dict[str, object] = {}
    for kind, pool in pools.items():
        prompts = _prompts(pool, n, rng)
        for p in prompts[:20]:
            detect(p)
        ms = []
        flagged = high = 0
        for p in prompts:
            began = time.perf_counter()
            found = detect(p)
            ms.append((time.perf_counter() - began) * 1000)
            flagged += bool(found)
            high += _high(found)
        p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
        out[kind] = {"prompts": len(ms), "p50_ms": round(statistics.median(ms), 3),
                     "p99_ms": round(p99, 3), "flagged": flagged, "high": high}  # fmt: skip
    return out


def _with_public(db: Path, detector, sets: dict[str, list[str]]) -> dict:
    """Public code and licence texts registered as an allow-list (`index add --public`, see
    PUBLIC): detection and false matches before and after, on the same snippets."""
    from dlpproxy.detect.fingerprint import FingerprintDetector
    from dlpproxy.fingerprint.indexer import index_paths
    from dlpproxy.fingerprint.store import FingerprintStore

    def measure(detect) -> dict[str, list[int]]:
        return {k: [_detected(detect, v), len(v)] for k, v in sets.items()}

    out: dict[str, object] = {"without": measure(detector.detect)}
    print("fingerprint: registering public code and licence texts", flush=True)
    roots = [SITE / p for p in PUBLIC if (SITE / p).is_dir()]
    with FingerprintStore(db) as store:
        code = index_paths(store, roots, "public-code", 8 * 1024 * 1024, public=True)
        texts = index_paths(store, [LICENCES], "licences", 8 * 1024 * 1024, public=True)
    public = FingerprintDetector(db).detect
    out["with"] = measure(public)
    out["public_packages"] = [r.name for r in roots]
    out["public_lines"] = code.lines + texts.lines
    return out


def run(args: argparse.Namespace) -> Section:
    """Index, then measure detection, false matches, lookup latency; a Section for run_all."""
    from dlpproxy.detect.fingerprint import FingerprintDetector

    packages = QUICK_INDEXED if args.fp_quick else INDEXED
    n, negatives = args.fp_snippets, args.fp_negatives
    if args.fp_quick:
        n, negatives = min(n, 100), min(negatives, 500)
    rng = random.Random(args.fp_seed)
    with tempfile.TemporaryDirectory(prefix="dlpproxy-fp-bench-") as tmp:
        print(f"fingerprint: indexing {', '.join(packages)} and /usr/share/doc", flush=True)
        built = _build(Path(tmp), packages)
        db = built.pop("db")
        detector = FingerprintDetector(db)  # type: ignore[arg-type]
        began = time.perf_counter()
        detector.detect("warm-up")
        load_s = time.perf_counter() - began
        index = detector._index
        code_pool = _pool(built.pop("code_held"))  # type: ignore[arg-type]
        doc_pool = _pool(built.pop("doc_files"))  # type: ignore[arg-type]
        other_pool = _pool(_code_files(OTHER) + _stdlib_files())
        prose_pool = _pool(built.pop("prose_files") + _metadata(OTHER))  # type: ignore[operator]
        print("fingerprint: sampling and matching snippets", flush=True)
        variants = _variants(code_pool, n, rng)
        recall = {k: [_detected(detector.detect, v), len(v)] for k, v in variants.items()}
        docs = _sample(doc_pool, n, rng)
        recall["documents"] = [_detected(detector.detect, [t for *_, t in docs]), len(docs)]
        false, copies, near, blocked = {}, {}, {}, {}
        negative_sets: dict[str, list[tuple]] = {}
        for name, pool in (("other code", other_pool), ("prose", prose_pool)):
            negative_sets[name] = _sample(pool, negatives, rng)
            texts = [t for *_, t in negative_sets[name]]
            flagged = [(t, found) for t in texts if (found := detector.detect(t))]
            false[name] = [len(flagged), len(texts)]
            copies[name] = sum(1 for t, found in flagged if _verbatim_copy(t, found))
            near[name] = sum(1 for t, found in flagged if _copy_of_indexed(t, found))
            blocked[name] = sum(1 for _, found in flagged if _high(found))
        pools = {"indexed code": code_pool, "other code": other_pool, "prose": prose_pool}
        latency = _latency(detector.detect, pools, args.fp_lookups, rng)
        public_sets = {
            "as is": variants["as is"],
            "renamed and reformatted": variants["both"],
            "documents": [t for *_, t in docs],
            **{k: [t for *_, t in v] for k, v in negative_sets.items()},
        }
        public = _with_public(db, detector, public_sets)  # type: ignore[arg-type]
    data = {
        **built, "packages": list(packages), "other_packages": list(OTHER), "seed": args.fp_seed,
        "index_load_seconds": round(load_s, 2),
        "memory_bytes": int(index.hashes.nbytes + index.owners.nbytes + index.ordinals.nbytes
                            + index.tags.nbytes) if index is not None else 0,
        "suppressed_common": index.suppressed if index is not None else 0,
        "recall": recall, "false_matches": false, "verbatim_copies": copies,
        "copies": near,
        "high_severity": blocked, "latency": latency, "with_public": public,
    }  # fmt: skip
    return Section("fingerprint", _markdown(data), data)


def _markdown(d: dict) -> str:
    lines_per_s = d["code_lines"] / d["code_seconds"] if d["code_seconds"] else 0.0
    million_s = 1_000_000 / lines_per_s if lines_per_s else float("inf")
    size = d["store_bytes"] / d["source_bytes"] if d["source_bytes"] else 0.0
    rows = [
        [f"detected: 10-line snippets, {k}", ratio(*v), ">= 0.95"] for k, v in d["recall"].items()
    ]
    for k, (hit, total) in d["false_matches"].items():
        copied = d["verbatim_copies"][k]
        rows.append([f"falsely matched: {k}", ratio(hit, total), "<= 0.001"])
        rows.append([f"... less verbatim copies ({copied})", ratio(hit - copied, total), ""])
        near = d["copies"][k]
        rows.append([f"... less copies of indexed files ({near})", ratio(hit - near, total), ""])
        rows.append(["... blocked (high-severity code)", ratio(d["high_severity"][k], total), ""])
    for kind, lat in d["latency"].items():
        goal = ">= 0.95" if kind == "indexed code" else "<= 0.001"
        rows.append(
            [f"2 KB prompts of {kind} flagged", ratio(lat["flagged"], lat["prompts"]), goal]
        )
        rows.append(["... blocked (high-severity code)", ratio(lat["high"], lat["prompts"]), ""])
    for kind, lat in d["latency"].items():
        rows.append([f"lookup 2 KB, {kind} (p50 / p99)", f"{lat['p50_ms']} / {lat['p99_ms']} ms",
                     "<= 2 ms"])  # fmt: skip
    rows += [
        ["indexing speed (code)", f"{lines_per_s:,.0f} lines/s", ""],
        [f"1,000,000 lines ({'measured on' if d['code_lines'] >= 1e6 else 'extrapolated from'} "
         f"{d['code_lines']:,})", f"{million_s:.0f} s", "<= 120 s"],
        ["store size / source size", f"{size:.3f} ({d['store_bytes']:,} / {d['source_bytes']:,} B)",
         "<= 0.10"],
    ]  # fmt: skip
    pub = d["with_public"]
    for k in pub["without"]:
        goal = "<= 0.001" if k in d["false_matches"] else ">= 0.95"
        rows.append([f"public code registered: {k}",
                     f"{ratio(*pub['without'][k])} -> {ratio(*pub['with'][k])}", goal])  # fmt: skip
    head = (
        f"## Fingerprint index\n\nIndexed as company code: {', '.join(d['packages'])} "
        f"({d['code_files']:,} files, {d['code_lines']:,} lines, {d['code_seconds']} s); as "
        f"company documents: {d['doc_count']:,} texts of /usr/share/doc ({d['doc_lines']:,} "
        f"lines). Not indexed: {', '.join(d['other_packages'])}, the standard library, the other "
        f"/usr/share/doc texts. {d['fingerprints']:,} fingerprints, "
        f"{d['suppressed_common']:,} common ones left out; index load {d['index_load_seconds']} s, "
        f"{d['memory_bytes'] / 1e6:.1f} MB in memory. Seed {d['seed']}. Left out by the "
        f"indexer, so not sampled: {_skips(d['skipped'])}. Public code for the last rows: "
        f"{len(pub['public_packages'])} other installed packages and the licence texts "
        f"({pub['public_lines']:,} lines).\n"
    )
    return head + "\n" + table(["measure", "measured", "target"], rows) + "\n"


def _skips(skipped: dict[str, dict[str, int]]) -> str:
    parts = [f"{kind} {n:,} {why}" for kind, why_n in skipped.items() for why, n in why_n.items()]
    return ", ".join(parts) or "nothing"


def main(argv: list[str] | None = None) -> int:
    return run_alone(__doc__ or "", add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
