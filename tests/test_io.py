"""planner.io: bounded document parsing and atomic, pre-checked output writing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from planner import io as kio
from planner.errors import ConfigError


def one_line(err: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- YAML
def test_yaml_alias_bomb_is_rejected_fast() -> None:
    # "Billion laughs": 9 levels of 9 references expand to 9^9 = 387,420,489 leaves, from
    # a document under 1 KB with only 81 aliases (below the alias-count limit).
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = "\n".join(lines)
    assert len(text) < 1024
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand") as err:
        kio.parse_yaml(text, "bomb.yaml")
    assert time.perf_counter() - start < 1.0
    assert "bomb.yaml" in one_line(err)


def test_yaml_alias_count_is_limited() -> None:
    body = "\n".join(f"k{i}: *x" for i in range(kio.MAX_YAML_ALIASES + 1))
    with pytest.raises(ConfigError, match="too many aliases"):
        kio.parse_yaml("base: &x 1\n" + body, "many.yaml")


def test_yaml_small_anchors_still_work() -> None:
    doc = kio.parse_yaml("slo: &s {ttft_s: 2, tpot_s: 0.1}\nother: *s\n", "ok.yaml")
    assert doc["other"] == {"ttft_s": 2, "tpot_s": 0.1}


@pytest.mark.parametrize(
    "text", ["[" * 5000, "a:\n" + "".join(" " * i + "- \n" for i in range(3000))]
)
def test_yaml_deep_nesting_is_one_line_error(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        kio.parse_yaml(text, "deep.yaml")
    assert "deep.yaml" in one_line(err)


def test_yaml_nesting_at_the_limit_parses() -> None:
    depth = kio.MAX_NESTING_DEPTH - 1  # the document node itself is one level
    doc = kio.parse_yaml("[" * depth + "]" * depth, "ok.yaml")
    for _ in range(depth - 1):
        doc = doc[0]
    assert doc == []


def test_yaml_duplicate_key_names_key_and_line() -> None:
    text = "name: a\nduration_s: 10\nseed: 1\nduration_s: 20\n"
    with pytest.raises(ConfigError) as err:
        kio.parse_yaml(text, "dup.yaml")
    message = one_line(err)
    assert "duplicate key 'duration_s'" in message and "line 4" in message


def test_yaml_nested_duplicate_key() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'rate_per_s' at line 3"):
        kio.parse_yaml("arrival:\n  rate_per_s: 1\n  rate_per_s: 2\n", "dup.yaml")


def test_yaml_huge_integer_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="integer with 5,000 digits") as err:
        kio.parse_yaml("replicas: " + "9" * 5000, "big.yaml")
    assert "line 1" in one_line(err)


@pytest.mark.parametrize("text", ["x: \x00", "\x01\x02", "a: b\x7f"])
def test_yaml_control_characters_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        kio.parse_yaml(text, "ctl.yaml")


def test_yaml_unsafe_tag_is_rejected() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        kio.parse_yaml("x: !!python/object/apply:os.system ['true']", "evil.yaml")


# --------------------------------------------------------------------------- JSON
def test_json_deep_nesting_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="nested 100,000 levels deep") as err:
        kio.parse_json("[" * 100_000 + "]" * 100_000, "deep.json")
    assert "deep.json" in one_line(err)


def test_json_brackets_inside_strings_do_not_count() -> None:
    doc = kio.parse_json(json.dumps({"note": "[" * 1000 + "{" * 1000}), "ok.json")
    assert doc["note"].startswith("[[[")


def test_json_depth_counts_only_structure() -> None:
    # Hand count: [ { "a" : [ "]]]" ] } ] is three levels deep.
    assert kio.json_depth('[{"a": ["]]]"]}]') == 3


def test_json_huge_integer_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="integer with 5,000 digits") as err:
        kio.parse_json('{"num_hidden_layers": ' + "1" * 5000 + "}", "config.json")
    assert "config.json" in one_line(err)


@pytest.mark.parametrize(
    "text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}', '{"x": 1e999}']
)
def test_json_non_finite_numbers_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        kio.parse_json(text, "config.json")


def test_json_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError, match="not valid JSON.*line 2"):
        kio.parse_json('{"a": 1,\n}', "config.json")


# --------------------------------------------------------------------------- files
def test_read_document_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("x: " + "1" * 200)
    with pytest.raises(ConfigError, match="larger than the 100-byte limit"):
        kio.read_text(path, max_bytes=100)
    assert kio.read_text(path, max_bytes=1000).startswith("x: ")


def test_read_document_missing_folder_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        kio.read_document(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        kio.read_document(tmp_path)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"x: \xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        kio.read_document(binary)


def test_read_document_picks_parser_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"a": 1}')
    assert kio.read_document(path) == {"a": 1}
    path.write_text("a: 1")  # YAML is not JSON
    with pytest.raises(ConfigError, match="not valid JSON"):
        kio.read_document(path)


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_output_path_is_an_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="empty output path"):
        kio.check_writable(bad, field="--json")


def test_output_path_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        kio.check_writable(tmp_path)
    with pytest.raises(ConfigError, match="folder does not exist"):
        kio.check_writable(tmp_path / "no" / "such" / "out.json")
    assert kio.check_writable(tmp_path / "out.json") == tmp_path / "out.json"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_unwritable_folder_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write"):
            kio.check_writable(folder / "out.json")
    finally:
        folder.chmod(0o700)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    kio.write_text_atomic(out, "new")
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kio.os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="No space left"):
        kio.write_text_atomic(out, "new")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
