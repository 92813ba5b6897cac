"""Uploaded files: stored under generated names in one private folder; what the user
typed is a label, never part of a path.

- ``store_upload(data, kind)`` writes the bytes to ``<private dir>/<random hex><suffix>``,
  the suffix chosen from ``SUFFIXES`` by the caller's kind (not from the upload's name).
  The folder is created once per server process with mode 0700 (``tempfile.mkdtemp``),
  each file with mode 0600 and ``O_EXCL`` (never overwrites), and the folder is removed
  when the process exits.
- ``clean_label(text)`` turns a user's "Name for it" into a display label: printable,
  at most ``LABEL_MAX_CHARS`` characters, no commas (the URL's list separator).
- ``unique_label(label, taken)`` appends " (2)", " (3)", ... so a second upload under the
  same name never replaces the first, and a label never shadows a catalog model.
"""

from __future__ import annotations

import atexit
import io
import os
import posixpath
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from planner.errors import KvplanError
from planner.io import MAX_DOCUMENT_BYTES, decode_text, parse_document
from planner.model.catalog import catalog_names
from planner.model.hf_import import spec_from_hf_config
from planner.schema import Scenario
from planner.validation import validate

CONFIG_UPLOAD_LIMIT_BYTES = MAX_DOCUMENT_BYTES  # a config.json is a few KB
MAX_CUSTOM_MODELS = 20  # per session
LABEL_MAX_CHARS = 64
DEFAULT_LABEL = "custom-model"
SUFFIXES = {"config": ".json", "scenario": ".yaml", "trace-jsonl": ".jsonl", "trace-csv": ".csv"}
_ALLOWED = re.compile(r"[^A-Za-z0-9 ._+()\-:]")

_private_dir: Path | None = None


def private_dir() -> Path:
    """This process's upload folder (created on first use, mode 0700)."""
    global _private_dir
    if _private_dir is None or not _private_dir.is_dir():
        _private_dir = Path(tempfile.mkdtemp(prefix="kvplan-uploads-"))
        atexit.register(shutil.rmtree, _private_dir, ignore_errors=True)
    return _private_dir


def store_upload(data: bytes, kind: str) -> Path:
    """Write ``data`` under a generated name in the private folder; return its path."""
    if kind not in SUFFIXES:
        raise KvplanError("unknown upload kind", field="kind", value=kind)
    path = private_dir() / f"{uuid.uuid4().hex}{SUFFIXES[kind]}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def clean_label(text: str) -> str:
    """A display label from what the user typed: disallowed characters become '-', runs of
    whitespace one space, at most LABEL_MAX_CHARS characters; empty -> DEFAULT_LABEL."""
    label = _ALLOWED.sub("-", " ".join(text.split()))[:LABEL_MAX_CHARS].strip()
    return label or DEFAULT_LABEL


def unique_label(label: str, taken: set[str] | frozenset[str]) -> str:
    """``label``, or ``label (k)`` with the smallest k >= 2 not in ``taken``."""
    if label not in taken:
        return label
    k = 2
    while True:
        suffix = f" ({k})"
        candidate = label[: LABEL_MAX_CHARS - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        k += 1


def add_config_upload(
    data: bytes, wanted_name: str, where: str, customs: dict[str, str], reserved: set[str]
) -> str:
    """Validate an uploaded Hugging Face config.json, store it under a generated name and
    record it in ``customs`` (label -> stored path) under a new, unique label; return the
    label. ``reserved`` are names the label must not take (the catalog's)."""
    if len(data) > CONFIG_UPLOAD_LIMIT_BYTES:
        raise KvplanError(
            f"{len(data):,} bytes is over the {CONFIG_UPLOAD_LIMIT_BYTES:,}-byte limit",
            where=where,
        )
    if len(customs) >= MAX_CUSTOM_MODELS:
        raise KvplanError(
            f"this session already has {MAX_CUSTOM_MODELS} added models; reload the page to "
            "start over",
            where=where,
        )
    raw = parse_document(decode_text(data, where), where, json_only=True)
    label = unique_label(clean_label(wanted_name), set(customs) | reserved)
    spec_from_hf_config(raw, name=label, where=where)
    customs[label] = str(store_upload(data, "config"))
    return label


def _paths_in(value: Any, at: str) -> Iterator[str]:
    """Dotted locations of file references (empirical distributions) in a raw document."""
    if isinstance(value, dict):
        if value.get("kind") == "empirical":
            yield at
        for key, sub in value.items():
            yield from _paths_in(sub, f"{at}.{key}" if at else str(key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths_in(sub, f"{at}[{i}]")


UPLOADED_TRACE = "(uploaded trace)"  # stands for the trace file given beside the scenario


def uploaded_scenario(
    text: str,
    where: str,
    customs: dict[str, str],
    trace_uploaded: bool = False,
    bundled: dict[str, str] | None = None,
) -> Scenario:
    """A scenario from an uploaded YAML. It may name catalog models or the models added in
    this session (by their label) or shipped in the same zip (``bundled``: the model value
    as written -> stored path), but no file on the server: a ``model`` path, an empirical
    distribution's ``file``, or a ``workload.trace`` without an uploaded trace (its path is
    then replaced by the upload) is refused with one line naming the field."""
    raw = parse_document(text, where)
    if not isinstance(raw, dict):
        raise KvplanError("a scenario is a YAML mapping (name: ..., model: ..., ...)", where=where)
    model = raw.get("model")
    if isinstance(model, str):
        known = {**customs, **(bundled or {})}
        if model in known:
            raw = {**raw, "model": known[model]}
        elif model not in catalog_names():
            raise KvplanError(
                "is not a catalog model or a model added in this session; an uploaded "
                "scenario cannot read files on the server",
                where=where,
                field="model",
                value=model,
                expected="one of " + ", ".join([*catalog_names(), *customs]),
            )
    workload = raw.get("workload")
    if isinstance(workload, dict) and isinstance(workload.get("trace"), dict):
        if not trace_uploaded:
            raise KvplanError(
                "this scenario replays a trace file: upload the trace below (an uploaded "
                "scenario cannot read files on the server)",
                where=where,
                field="workload.trace.path",
            )
        workload = {**workload, "trace": {**workload["trace"], "path": UPLOADED_TRACE}}
        raw = {**raw, "workload": workload}
    for at in _paths_in(workload, "workload"):
        raise KvplanError(
            "an uploaded scenario cannot read files on the server (empirical distributions)",
            where=where,
            field=at,
        )
    return validate(Scenario, raw, where)


BUNDLE_MAX_MEMBERS = 200
BUNDLE_MAX_BYTES = 4 * MAX_DOCUMENT_BYTES  # all members together, uncompressed


def _member_bytes(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """A member's bytes, read with a limit whatever its header claims (zip bombs)."""
    with bundle.open(info) as handle:
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise KvplanError(
            f"is larger than the {MAX_DOCUMENT_BYTES:,}-byte limit",
            where=f"{where}:{info.filename}",
        )
    return data


def scenarios_from_zip(
    data: bytes, where: str, customs: dict[str, str]
) -> list[tuple[str, Scenario]]:
    """The scenarios of an exported view (``kvplan-view.zip``): every ``*.yaml`` member,
    its model a catalog name, a session model, or a config.json shipped in the zip (stored
    under a generated name like any upload). Nothing is extracted by its own name."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in bundle.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise KvplanError("not a zip file", where=where) from None
    if len(infos) > BUNDLE_MAX_MEMBERS:
        raise KvplanError(f"has more than {BUNDLE_MAX_MEMBERS} files", where=where)
    if sum(i.file_size for i in infos) > BUNDLE_MAX_BYTES:
        raise KvplanError(f"unpacks to more than {BUNDLE_MAX_BYTES:,} bytes", where=where)
    with bundle:
        bundled: dict[str, str] = {}
        for info in infos:
            if info.filename.endswith(".json"):
                raw = _member_bytes(bundle, info, where)
                member = f"{where}:{info.filename}"
                spec_from_hf_config(
                    parse_document(decode_text(raw, member), member, True),
                    name=info.filename,
                    where=member,
                )
                bundled[posixpath.normpath(info.filename)] = str(store_upload(raw, "config"))
        out = []
        for info in infos:
            if not info.filename.endswith((".yaml", ".yml")):
                continue
            member = f"{where}:{info.filename}"
            text = decode_text(_member_bytes(bundle, info, where), member)
            folder = posixpath.dirname(info.filename)
            relative = {
                posixpath.relpath(name, folder or "."): path for name, path in bundled.items()
            }
            out.append((info.filename, uploaded_scenario(text, member, customs, bundled=relative)))
    if not out:
        raise KvplanError("holds no scenario (*.yaml)", where=where)
    return sorted(out)
