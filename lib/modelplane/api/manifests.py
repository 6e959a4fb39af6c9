"""Loads modelplane.ai manifests from files and directories into validated objects.

``load_manifests(paths)`` reads files (``.yaml``, ``.yml``, ``.json``; directories
recursively, in sorted order), splits multi-document YAML, and validates and
defaults every modelplane.ai/v1alpha1 object. ``load_paths(paths)``
only parses (``-`` reads stdin), for callers such as the offline scheduler that
validate the raw objects themselves.

Guarantees: one ``Document`` per non-empty document, in file then document
order, each with its source (file, document index); a malformed document is
reported with its file and index and never stops the others; objects of other
API groups come back with ``foreign=True`` and are not validated.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelplane.api.blockyaml import readable
from modelplane.api.names import API_VERSION
from modelplane.api.validation import FieldError, Validator, default_validator
from modelplane.api.yamlload import load_lines

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
FOREIGN = f"not a {API_VERSION} object"

_SEPARATOR = re.compile(r"^---(?=\s|$)")
_END = re.compile(r"^\.\.\.\s*$")
_CONTENT = re.compile(r"^\s*[^\s#]")
_MARKERS = ("---", "...")
_MARKER_LINE = re.compile(r"^(?:---|\.\.\.)", re.M)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from: its file and 0-based index in that file."""

    file: Path
    index: int

    def __str__(self) -> str:
        return f"{self.file} (document {self.index})"


@dataclass(frozen=True, slots=True)
class Document:
    """One loaded document.

    ``obj`` is set exactly when the document is a valid modelplane.ai object: the
    object with its schema defaults applied, as the API server would store it;
    otherwise ``errors`` says why (a parse error, invalid fields, or for
    ``foreign`` documents, that the object belongs to another API).
    """

    source: Source
    raw: Mapping[str, Any] | None
    obj: dict[str, Any] | None = None
    errors: tuple[FieldError, ...] = ()
    foreign: bool = False

    @property
    def ok(self) -> bool:
        return self.obj is not None


def document_lines(text: str, simple: bool | None = None) -> list[list[str]]:
    """The lines of each YAML document of a stream, split at ``---`` lines; a leading
    part without content is dropped. ``simple`` is ``readable(text)`` when known."""
    if simple is None:
        simple = readable(text)
    if simple:  # only printable ASCII and "\n": splitlines() is split("\n")
        lines = text.split("\n") if text else []
        if text.endswith("\n"):
            lines.pop()
    else:
        lines = text.splitlines()
    chunks: list[list[str]] = [[]]
    current, start = chunks[0], 0
    for i in _marker_lines(text, lines, simple):
        line = lines[i]
        if _SEPARATOR.match(line):
            current.extend(lines[start:i])
            current = [line[3:]]
            chunks.append(current)
        elif _END.match(line):
            current.extend(lines[start:i])
        else:
            continue
        start = i + 1
    current.extend(lines[start:])
    if len(chunks) > 1 and not any(_CONTENT.match(ln) for ln in chunks[0]):
        chunks.pop(0)
    return chunks


def _marker_lines(text: str, lines: list[str], simple: bool) -> list[int]:
    """The indices of the lines that start with ``---`` or ``...``; for a ``simple``
    text (lines split at "\n" only) found by one search of the whole text."""
    if not simple:
        return [i for i, line in enumerate(lines) if line[:3] in _MARKERS]
    out: list[int] = []
    index = position = 0
    for found in _MARKER_LINE.finditer(text):
        index += text.count("\n", position, found.start())
        position = found.start()
        if index < len(lines):
            out.append(index)
    return out


def split_documents(text: str) -> list[str]:
    """The YAML documents of a stream, split at ``---`` lines; a leading empty part is dropped."""
    return ["\n".join(c) + "\n" for c in document_lines(text)]


@dataclass(frozen=True, slots=True)
class Parsed:
    """One document as parsed, before validation: a mapping, or why it is not one."""

    source: Source
    raw: Mapping[str, Any] | None
    problem: str | None = None


def parse_text(text: str, file: Path) -> list[Parsed]:
    """The non-empty documents of one file's text (YAML, or JSON when ``file`` ends in .json)."""
    if file.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            return [Parsed(Source(file, 0), None, f"malformed JSON: {exc}")]
        items = data if isinstance(data, list) else [data]
        return [p for i, raw in enumerate(items) if (p := _parsed(raw, Source(file, i)))]
    out: list[Parsed] = []
    memo: dict[tuple[str, bool], str] = {}  # how plain scalars resolve, shared by the file
    simple = readable(text)
    for i, lines in enumerate(document_lines(text, simple)):
        try:
            raw = load_lines(lines, memo, simple)
        except yaml.YAMLError as exc:
            out.append(
                Parsed(Source(file, i), None, "malformed YAML: " + " ".join(str(exc).split()))
            )
            continue
        parsed = _parsed(raw, Source(file, i))
        if parsed is not None:
            out.append(parsed)
    return out


def _parsed(raw: Any, source: Source) -> Parsed | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return Parsed(source, None, f"a document must be an object, not {type(raw).__name__}")
    return Parsed(source, raw)


def manifest_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """The files ``paths`` name: files as given, directories expanded recursively and sorted.

    ``-`` stands for standard input and is kept as is.
    """
    roots = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for root in map(Path, roots):
        if str(root) == STDIN:
            files.append(root)
        elif root.is_dir():
            files.extend(sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        elif root.exists():
            files.append(root)
        else:
            raise FileNotFoundError(f"no such file or directory: {root}")
    return files


def parse_files(paths: Iterable[str | Path] | str | Path) -> list[Parsed]:
    """Every document of every manifest file under ``paths``, parsed but not validated."""
    out: list[Parsed] = []
    for file in manifest_files(paths):
        try:
            text = sys.stdin.read() if str(file) == STDIN else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.append(Parsed(Source(file, 0), None, f"unreadable: {exc}"))
            continue
        out.extend(parse_text(text, file))
    return out


def _document(parsed: Parsed, validator: Validator) -> Document:
    source, raw = parsed.source, parsed.raw
    if raw is None:
        return Document(source, None, errors=(FieldError("", parsed.problem or "unreadable"),))
    api_version = raw.get("apiVersion")
    if api_version != API_VERSION:
        kind = raw.get("kind")
        err = FieldError("apiVersion", f"{FOREIGN} ({api_version} {kind})", str(kind or ""))
        return Document(source, raw, errors=(err,), foreign=True)
    defaulted, errors = validator.validate(raw)
    if errors:
        return Document(source, raw, errors=tuple(errors))
    return Document(source, raw, obj=defaulted)


def load_manifests(
    paths: Iterable[str | Path] | str | Path, validator: Validator | None = None
) -> list[Document]:
    """Every document under ``paths``, validated and defaulted (see ``Document``)."""
    v = validator or default_validator()
    return [_document(p, v) for p in parse_files(paths)]


@dataclass(frozen=True, slots=True)
class Loaded:
    """Raw objects of every API for callers that validate themselves (the offline scheduler).

    ``objects`` holds every document that parsed to an object, as written, in order;
    ``errors`` one line per document that did not ("FILE (document N): why").
    """

    objects: tuple[Mapping[str, Any], ...]
    errors: tuple[str, ...]
    sources: tuple[str, ...] = ()  # "FILE (document N)" for each of ``objects``


def load_paths(paths: Iterable[str | Path] | str | Path) -> Loaded:
    """Parses ``paths`` (``-`` for stdin) into raw objects and parse errors, without validating."""
    parsed = parse_files(paths)
    return Loaded(
        objects=tuple(p.raw for p in parsed if p.raw is not None),
        errors=tuple(f"{p.source}: {p.problem}" for p in parsed if p.raw is None),
        sources=tuple(str(p.source) for p in parsed if p.raw is not None),
    )
