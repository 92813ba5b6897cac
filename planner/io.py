"""Bounded reading and atomic writing of the files a user hands kvplan.

Reading: every file is read with a size cap, and YAML / JSON documents are parsed with
limits that keep a small input from costing large work or memory (a YAML "billion laughs"
alias bomb, nesting thousands deep, a 5,000-digit integer). YAML duplicate keys are an
error (PyYAML silently keeps the last one). Every failure is one ``ConfigError`` line
naming the file and, where it helps, the line.

Writing: :func:`check_writable` proves the destination can be written *before* the work
that produces it starts (by creating and removing a temporary file beside it), and
:func:`write_text_atomic` writes a temporary file in the same folder and renames it over
the destination (``os.replace``), so a reader never sees half a file and a failed write
never destroys an earlier result.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from planner.errors import ConfigError

# Limits. Real kvplan documents are a few KB, nest under 10 levels and use no aliases; a
# Hugging Face config.json is under 100 KB. The caps leave wide room above that.
MAX_DOCUMENT_BYTES = 16 * 2**20  # a YAML or JSON document (scenario, profile, config.json)
MAX_TRACE_BYTES = 2**30  # a trace or empirical-distribution file, read line by line
MAX_LINE_BYTES = 2**20  # one line of a JSONL trace
MAX_NESTING_DEPTH = 64  # levels of lists / mappings
MAX_YAML_ALIASES = 100  # '*name' references in one YAML document
MAX_YAML_NODES = 1_000_000  # nodes of a YAML document with every alias expanded
MAX_INTEGER_DIGITS = 30  # any count or size in kvplan fits in far fewer digits


# --------------------------------------------------------------------------- reading
def read_bytes(
    path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES, what: str = "file"
) -> bytes:
    """The bytes of a file of at most ``max_bytes``, or a one-line ConfigError."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"is a folder, not a {what}", where=str(p))
        with p.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", where=str(p)) from None
    except OSError as err:
        raise ConfigError(f"cannot read {what}: {err.strerror or err}", where=str(p)) from None
    if len(data) > max_bytes:
        raise ConfigError(f"{what} is larger than the {max_bytes:,}-byte limit", where=str(p))
    return data


def read_text(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES, what: str = "file") -> str:
    """A UTF-8 text file of at most ``max_bytes``, or a one-line ConfigError."""
    data = read_bytes(path, max_bytes=max_bytes, what=what)
    return decode_text(data, str(path), what)


def decode_text(data: bytes, where: str, what: str = "file") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{what} is not UTF-8 text (bad byte at offset {err.start})", where=where
        ) from None


def read_document(path: str | Path) -> Any:
    """Parse a YAML file, or a JSON file when the name ends in ``.json``, with the limits
    above; a one-line ConfigError on any failure."""
    p = Path(path)
    text = read_text(p, what="file")
    return parse_document(text, str(p), json_only=p.suffix.lower() == ".json")


def parse_document(text: str, where: str, json_only: bool = False) -> Any:
    """Parse YAML (or JSON only) text with the limits above."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            f"document is larger than the {MAX_DOCUMENT_BYTES:,}-byte limit", where=where
        )
    return parse_json(text, where) if json_only else parse_yaml(text, where)


# --------------------------------------------------------------------------- JSON
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]")


def json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text (brackets inside strings ignored)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    if not brackets:
        return 0
    chars = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((chars == ord("[")) | (chars == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _json_int(where: str) -> Any:
    def parse(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise ConfigError(
                f"integer with {len(digits.lstrip('-')):,} digits",
                where=where,
                expected=f"at most {MAX_INTEGER_DIGITS} digits",
            )
        return int(digits)

    return parse


def _json_float(where: str) -> Any:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ConfigError(
                f"number {text[:40]} is out of range", where=where, expected="a finite number"
            )
        return value

    return parse


def _json_constant(where: str) -> Any:
    def parse(name: str) -> float:
        raise ConfigError(f"{name} is not allowed", where=where, expected="a finite number")

    return parse


def parse_json(text: str, where: str) -> Any:
    """JSON with a nesting limit, integers of at most MAX_INTEGER_DIGITS digits and finite
    numbers only (NaN / Infinity rejected)."""
    # Cheap bound first: nesting can be no deeper than the number of opening brackets.
    if text.count("[") + text.count("{") > MAX_NESTING_DEPTH:
        depth = json_depth(text)
        if depth > MAX_NESTING_DEPTH:
            raise ConfigError(
                f"nested {depth:,} levels deep",
                where=where,
                expected=f"at most {MAX_NESTING_DEPTH} levels",
            )
    try:
        return json.loads(
            text,
            parse_int=_json_int(where),
            parse_float=_json_float(where),
            parse_constant=_json_constant(where),
        )
    except json.JSONDecodeError as err:
        raise ConfigError(f"not valid JSON: {err.msg} at line {err.lineno}", where=where) from None
    except RecursionError:  # defence in depth: the depth check above comes first
        raise ConfigError("nested too deeply", where=where) from None


# --------------------------------------------------------------------------- YAML
class _LimitedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped here
    """PyYAML's safe loader with a nesting limit, an alias limit, an expanded-size limit,
    bounded integers and duplicate keys rejected."""

    def __init__(self, stream: str, where: str) -> None:
        super().__init__(stream)
        self.where = where
        self._depth = 0
        self._aliases = 0

    def _fail(self, message: str, node_or_mark: Any, expected: str | None = None) -> ConfigError:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        return ConfigError(f"{message}{line}", where=self.where, expected=expected)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise self._fail(
                    "too many aliases",
                    self.peek_event(),
                    f"at most {MAX_YAML_ALIASES} '*' references",
                )
        self._depth += 1
        try:
            if self._depth > MAX_NESTING_DEPTH:
                raise self._fail(
                    "nested too deeply", self.peek_event(), f"at most {MAX_NESTING_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise self._fail(f"duplicate key {key!r}", key_node)
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = re.sub(r"[^0-9a-fA-F]", "", str(node.value))
        if len(digits) > MAX_INTEGER_DIGITS:
            raise self._fail(
                f"integer with {len(digits):,} digits",
                node,
                f"at most {MAX_INTEGER_DIGITS} digits",
            )
        value: int = super().construct_yaml_int(node)
        return value


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)


def expanded_size(root: Node, limit: int = MAX_YAML_NODES) -> int:
    """Nodes of a composed YAML graph with every alias expanded (an alias repeats its
    whole subtree). Stops counting once past ``limit``."""
    memo: dict[int, int] = {}

    def size(node: Node) -> int:
        known = memo.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
                if total > limit:
                    break
        memo[id(node)] = total
        return total

    return size(root)


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document with the limits above (safe tags only)."""
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text, where)  # the reader rejects control characters here
        node = loader.get_single_node()
        if node is None:
            return None
        if loader._aliases and expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(
                "aliases expand to too large a document",
                where=where,
                expected=f"at most {MAX_YAML_NODES:,} values with aliases expanded",
            )
        return loader.construct_document(node)
    except yaml.reader.ReaderError as err:
        raise ConfigError(
            f"not valid YAML: character {err.character!r} at offset {err.position:,} is not "
            "allowed",
            where=where,
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None)
        detail = f": {problem}" if problem else ""
        raise ConfigError(f"not valid YAML{at}{detail}", where=where) from None
    except RecursionError:  # defence in depth: compose_node's depth check comes first
        raise ConfigError("nested too deeply", where=where) from None
    finally:
        if loader is not None:
            loader.dispose()


# --------------------------------------------------------------------------- writing
def check_writable(path: str | Path, *, field: str = "output") -> Path:
    """The destination as a Path once proven writable: not empty, not a folder, its folder
    exists and accepts a new file. Call before the work that produces the output."""
    text = str(path)
    if not text.strip():
        raise ConfigError(
            "empty output path", field=field, value=text, expected="a file name, or '-' for stdout"
        )
    p = Path(text)
    if p.is_dir():
        raise ConfigError("is a folder", field=field, value=text, expected="a file path")
    folder = p.parent
    if not folder.is_dir():
        raise ConfigError(
            "folder does not exist",
            field=field,
            value=text,
            expected="a file in an existing folder",
        )
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError("file is not writable", field=field, value=text)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{p.name}.", suffix=".tmp"):
            pass
    except OSError as err:
        raise ConfigError(
            f"cannot write in folder {str(folder)!r}: {err.strerror or err}",
            field=field,
            value=text,
        ) from None
    return p


def write_text_atomic(path: str | Path, text: str, *, field: str = "output") -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename:
    the destination holds either its old content or all of the new."""
    p = check_writable(path, field=field)
    tmp_name = ""
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=p.parent, prefix=f".{p.name}.", suffix=".tmp", delete=False
        ) as handle:
            tmp_name = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, p)
        tmp_name = ""
    except OSError as err:
        raise ConfigError(
            f"cannot write: {err.strerror or err}", field=field, value=str(p)
        ) from None
    finally:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
