"""Turn pydantic validation errors into one-line KvplanErrors; check data files' sources.

Documents are read and parsed by :mod:`planner.io` (size, nesting, alias and integer
limits; duplicate YAML keys rejected); ``read_document`` / ``parse_document`` are
re-exported here for the loaders that import them from this module."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner.errors import ConfigError, UnknownNameError, one_of
from planner.io import parse_document, read_document

__all__ = [
    "check_sources",
    "config_error_from",
    "parse_document",
    "read_document",
    "validate",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


# pydantic puts the tag of a discriminated union into the error location; drop it where it
# follows a user-chosen key (attention.<name>.<tag>.field -> attention.<name>.field).
UNION_TAGS = {
    *("gqa", "mla", "dsa", "csa", "hca", "swa", "dense", "moe"),  # attention, ffn
    *("constant", "lognormal", "empirical"),  # token distributions
    *("poisson", "gamma", "piecewise", "diurnal"),  # arrival processes
    *("fixed", "sized", "autoscale"),  # migration replica policies
    *("stand_up", "shadow", "cutover", "rollback_reserve", "decommission"),  # migration phases
}
TAGGED_CONTAINERS = {"attention", "ffn"}


def _loc(loc: tuple[Any, ...]) -> str:
    kept: list[str] = []
    for part in loc:
        text = str(part)
        if text in UNION_TAGS and kept and kept[-1] not in TAGGED_CONTAINERS:
            continue
        kept.append(text)
    return ".".join(kept)


# What a YAML/JSON reader calls the Python types a document's value can have.
DOCUMENT_TYPES = {
    "list": "a list",
    "str": "text",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "NoneType": "empty",
}


def config_error_from(err: ValidationError, where: str) -> ConfigError:
    """The first validation problem as a ConfigError naming file, field and value, in the
    file's words: no internal class names ("instance of Scenario"), no pydantic prefixes."""
    first = err.errors()[0]
    field = _loc(first["loc"]) or None  # None: the whole document (a cross-field rule)
    more = len(err.errors()) - 1
    message = re.sub(r" or instance of \w+", "", first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if field is None and first["type"] in ("dict_type", "model_type"):
        got = DOCUMENT_TYPES.get(type(value).__name__, type(value).__name__)
        message = f"the document must be a mapping of fields (name: value); it is {got}"
    message += f" (+{more} more problem{'s' if more > 1 else ''})" if more else ""
    if isinstance(value, dict | list) or field is None:
        value = None  # a whole (sub-)document is not a useful 'value' to print
    return ConfigError(message, where=where, field=field, value=value)


# Fields of a data file that are labels, not facts needing a source.
UNSOURCED_FIELDS = {"name", "display_name", "aliases", "sources", "notes"}


def _field_paths(raw: dict[str, Any]) -> set[str]:
    """Dotted paths of every field in the raw document (two levels deep for spec maps)."""
    paths: set[str] = set()
    for key, value in raw.items():
        paths.add(key)
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                paths.add(f"{key}.{sub}")
                if isinstance(subvalue, dict):
                    paths.update(f"{key}.{sub}.{leaf}" for leaf in subvalue)
    return paths


def check_sources(raw: dict[str, Any], where: str) -> None:
    """Every sources key names a field; every field is covered by a source."""
    sources = raw.get("sources") or {}
    if not isinstance(sources, dict) or not all(isinstance(k, str) for k in sources):
        raise ConfigError(
            "must map field names to their sources",
            where=where,
            field="sources",
            value=sources if not isinstance(sources, dict) else None,
            expected="a mapping like {hbm_gib: 'vendor datasheet, 2024'}",
        )
    paths = _field_paths(raw)
    for key in sources:
        if key not in paths:
            raise ConfigError(
                "source given for a field that does not exist", where=where, field=f"sources.{key}"
            )
    for key in raw:
        if key in UNSOURCED_FIELDS:
            continue
        covered = key in sources or any(s.startswith(f"{key}.") for s in sources)
        if not covered:
            raise ConfigError(
                "field has no source",
                where=where,
                field=key,
                expected=f"an entry '{key}' (or '{key}.<sub>') in sources",
            )


def validate(model: type[ModelT], data: Any, where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise config_error_from(err, where) from None


def sourced_document(path: Path, model: type[ModelT], what: str) -> ModelT:
    """A data file with a ``sources`` map (GPU profile, engine): a mapping whose every field
    is sourced (``check_sources``), validated against ``model``."""
    raw = read_document(path)
    where = path.name
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} must be a mapping", where=where)
    check_sources(raw, where)
    return validate(model, raw, where)


def named_data_file(directory: Path, name: str, field: str, what: str) -> Path:
    """``directory/name.yaml``, or an error naming the field and the names that exist."""
    names = sorted(p.stem for p in directory.glob("*.yaml"))
    if name not in names:  # only a listed name is ever turned into a path
        raise UnknownNameError(
            f"unknown {what}", field=field, value=name, expected=one_of(name, names)
        )
    return directory / f"{name}.yaml"
