"""The `kvplan` command line, called in-process (and once as a subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from planner import catalog_names
from planner.cli import main
from planner.errors import KvplanError

FIXTURES = Path(__file__).parent / "fixtures" / "hf_configs"
ONE_M = 1_048_576
HEADLINE_MODELS = ["deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash"]
CATALOG = [
    "deepseek-v3",
    "deepseek-v3.2",
    "deepseek-v4-flash",
    "deepseek-v4-pro",
    "llama-3.1-70b",
    "qwen3-235b-a22b",
]
# The `kvplan compare --json` contract: key -> required type (extra keys are allowed).
COMPARE_ROW_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "kv_bytes_per_sequence": int,
    "state_bytes_per_sequence": int,
    "decode_flops_per_token": float,
    "weight_bytes": int,
    "kv_ratio_vs_first": (int, float),
    "flops_ratio_vs_first": (int, float),
    "beyond_max_context": bool,
}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail as a user error; return its one-line message."""
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    # kvplan's own errors, or argparse's ("kvplan plan: error: argument --batch: ...").
    assert re.match(r"kvplan( [a-z-]+)*: error: ", lines[0]), lines[0]
    return lines[0]


def write_config(tmp_path: Path, content: str | dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def llama_config(**changes: Any) -> dict[str, Any]:
    cfg = json.loads((FIXTURES / "llama-3.1-70b.json").read_text())
    cfg.update(changes)
    return cfg


# --------------------------------------------------------------------------- compare
def compare_1m(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return run_json(capsys, "compare", *HEADLINE_MODELS, "--context", "1M")


def test_compare_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    result = compare_1m(capsys)
    assert result["context_tokens"] == ONE_M
    assert [row["name"] for row in result["models"]] == HEADLINE_MODELS
    for row in result["models"]:
        for key, expected_type in COMPARE_ROW_TYPES.items():
            assert key in row, key
            assert isinstance(row[key], expected_type), (key, row[key])
        # bool is an int subclass in Python; the byte counts must be real integers.
        assert not isinstance(row["kv_bytes_per_sequence"], bool)
        assert row["kv_bytes_per_sequence"] > 0
    first = result["models"][0]
    assert first["kv_ratio_vs_first"] == 1.0
    assert first["flops_ratio_vs_first"] == 1.0
    beyond = {row["name"]: row["beyond_max_context"] for row in result["models"]}
    # V3.2 stops at 160K tokens; both V4 models reach 1M.
    assert beyond == {"deepseek-v3.2": True, "deepseek-v4-pro": False, "deepseek-v4-flash": False}


def test_compare_table_notes_maximum_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *HEADLINE_MODELS, "--context", "1M"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo any line wrapping
    # Only V3.2 (maximum 160K tokens) is flagged; the V4 models reach 1M.
    notes = re.findall(r"(\S+): \S+ is beyond its maximum context of (\S+)", out)
    assert notes == [("deepseek-v3.2", "160K")], out


def test_headline_kv_and_pro_flops_at_1m(capsys: pytest.CaptureFixture[str]) -> None:
    # V4 technical report / model card (April 2026): at 1M tokens V4-Pro needs 10% of
    # V3.2's KV cache and 27% of its per-token FLOPs; V4-Flash 7% of the KV cache.
    rows = {row["name"]: row for row in compare_1m(capsys)["models"]}
    pro, flash = rows["deepseek-v4-pro"], rows["deepseek-v4-flash"]
    assert pro["kv_ratio_vs_first"] == pytest.approx(0.10, abs=0.015)
    assert flash["kv_ratio_vs_first"] == pytest.approx(0.07, abs=0.015)
    assert pro["flops_ratio_vs_first"] == pytest.approx(0.27, abs=0.015)


def test_headline_flash_flops_documented_miss(capsys: pytest.CaptureFixture[str]) -> None:
    # The report quotes 10% of V3.2's FLOPs for V4-Flash at 1M; kvplan computes ~12.1%.
    # This is a documented miss, not a regression: the CSA lightning indexer alone (21
    # layers scoring 262,144 compressed entries with 64 heads x 128 dims) costs ~7.8% of
    # V3.2's decode FLOPs, so the published 10% cannot be reached with the published
    # config unless the report counts the indexer differently. Pin the band so a change
    # in either direction is noticed.
    rows = {row["name"]: row for row in compare_1m(capsys)["models"]}
    assert 0.10 < rows["deepseek-v4-flash"]["flops_ratio_vs_first"] < 0.13


@pytest.mark.parametrize(("text", "tokens"), [("128K", 131_072), ("1M", ONE_M), ("4096", 4096)])
def test_context_suffixes(capsys: pytest.CaptureFixture[str], text: str, tokens: int) -> None:
    result = run_json(capsys, "compare", "deepseek-v4-flash", "--context", text)
    assert result["context_tokens"] == tokens


# --------------------------------------------------------------------------- bad input
def test_unknown_model_names_it_and_lists_known(capsys: pytest.CaptureFixture[str]) -> None:
    line = run_error(capsys, "compare", "deepseek-v3.2", "no-such-model", "--context", "1M")
    assert "no-such-model" in line
    for name in CATALOG:
        assert name in line


def test_negative_context_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse errors are one line too (no usage block) and exit 2.
    assert main(["compare", "deepseek-v3.2", "--context", "-5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("kvplan compare: error: argument --context:")
    assert "negative" in line and "-5" in line


def test_unrecognized_arguments_are_quoted(capsys: pytest.CaptureFixture[str]) -> None:
    # `plan ... --json ''` (a file name left empty) printed "unrecognized arguments: " with
    # nothing after it; each stray argument is shown quoted, blank ones too.
    line = run_error(
        capsys, "plan", "--model", "llama-3.1-70b", "--gpu", "h200", "--context", "8K", "", "a b"
    )
    assert line == "kvplan plan: error: unrecognized arguments: '' 'a b'"


def test_invalid_json_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_config(tmp_path, '{"model_type": "llama",')
    line = run_error(capsys, "model", "import", str(path))
    assert str(path) in line
    assert "not valid JSON" in line


def test_missing_required_field_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = llama_config()
    del cfg["hidden_size"]
    path = write_config(tmp_path, cfg)
    line = run_error(capsys, "model", "import", str(path))
    assert "hidden_size" in line
    assert "llama" in line


def test_unsupported_model_type_lists_supported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_config(tmp_path, {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    line = run_error(capsys, "compare", str(path), "--context", "1K")
    assert "model_type" in line
    assert "gpt2" in line
    for supported in ("llama", "qwen3_moe", "deepseek_v3", "deepseek_v32", "deepseek_v4"):
        assert supported in line


def test_debug_reraises(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"model_type": "gpt2"})
    with pytest.raises(KvplanError, match="model_type"):
        main(["--debug", "model", "import", str(path)])
    with pytest.raises(KvplanError, match="no-such-model"):
        main(["--debug", "compare", "no-such-model", "--context", "1M"])


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "no-such-model", "--context", "1M"],
        ["compare", "deepseek-v3.2", "--context", "-5"],
        ["model", "import", str(FIXTURES / "does-not-exist.json")],
    ],
    ids=["unknown-model", "negative-context", "missing-file"],
)
def test_subprocess_errors_have_no_traceback(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "planner.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert "error:" in proc.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------- model
def test_model_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "model", "list")["models"]
    assert sorted(row["name"] for row in rows) == CATALOG == catalog_names()
    for row in rows:
        assert row["kv_bytes_per_token"] > 0
        assert row["max_context_tokens"] > 0


def test_model_show_v4_flash_layers(capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_json(capsys, "model", "show", "deepseek-v4-flash")
    layers = summary["layers"]
    assert len(layers) == summary["num_layers"] == 43
    assert [row["layer"] for row in layers] == list(range(43))
    assert Counter(row["kind"] for row in layers) == {"SWA": 2, "CSA": 21, "HCA": 20}
    assert [row["kind"] for row in layers[:4]] == ["SWA", "SWA", "CSA", "HCA"]
    assert {row["compress_ratio"] for row in layers if row["kind"] == "CSA"} == {4}
    assert {row["compress_ratio"] for row in layers if row["kind"] == "HCA"} == {128}


def test_model_import_llama_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "model", "import", str(FIXTURES / "llama-3.1-70b.json"))
    summary = result["summary"]
    assert summary["num_layers"] == 80
    assert summary["layers_by_kind"] == {"GQA": 80}
    # 2 (K, V) x 80 layers x 8 KV heads x 128 dims x 2 bytes (BF16) = 327,680 B/token.
    assert summary["kv_bytes_per_token"] == 327_680
    assert result["spec"]["hidden_size"] == 8192


def test_compare_at_zero_context_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    # V3.2 holds no cache at L = 0, so a KV ratio against it is undefined: null, not NaN.
    main(["compare", "deepseek-v3.2", "deepseek-v4-pro", "--context", "0", "--json"])
    out = capsys.readouterr().out
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert [m["kv_ratio_vs_first"] for m in data["models"]] == [None, None]


# --------------------------------------------------------------------------- edges
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"kvplan {version('kvplan')}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["plan", "--model", "llama-3.1-70b"],
        ["frontier", "--model", "llama-3.1-70b", "--gpu", "h200", "--points", str(2**31)],
        ["frontier", "--model", "llama-3.1-70b", "--gpu", "h200", "--points", "0"],
        ["simulate", "scenarios/chat-shared-prompt.yaml", "--seed", "-1"],
        ["simulate", "scenarios/chat-shared-prompt.yaml", "--seed", str(2**64)],
        ["cache-curve", "--trace", "t.jsonl", "--block-size", str(2**40)],
        ["compare", "llama-3.1-70b", "--context", "1e3"],
        ["compare", "llama-3.1-70b", "--context", str(2**41)],
        ["plan", "--model", "x", "--gpu", "h200", "--context", "8K", "--kv-dtype", "fp4"],
    ],
)
def test_argparse_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = run_error(capsys, *argv)
    assert "usage:" not in line


def test_frontier_bounds_name_their_flag(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["frontier", "--model", "llama-3.1-70b", "--gpu", "h200"]
    assert "--contexts" in run_error(capsys, *base, "--contexts", ",".join(["1K"] * 10_001))
    assert "--contexts" in run_error(capsys, *base, "--contexts", "8K,-1")
    line = run_error(capsys, *base, "--min-context", "1M", "--max-context", "1K")
    assert "--min-context" in line


def test_gpu_alias_and_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["plan", "--model", "llama-3.1-70b", "--context", "8K"]
    by_alias = run_json(capsys, *base, "--gpu", "h100")
    assert by_alias == run_json(capsys, *base, "--gpu", "h100-sxm")
    assert by_alias["gpu"] == "h100-sxm"
    line = run_error(capsys, *base, "--gpu", "a100")
    assert "--gpu = 'a100'" in line and "did you mean 'a100-40gb' or 'a100-80gb'?" in line


def test_names_never_become_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # A profile or catalog name with a path in it is an unknown name, not a file to read.
    profile = Path(__file__).parents[1] / "hardware_profiles" / "h200.yaml"
    (tmp_path / "evil.yaml").write_text(profile.read_text())
    relative = "../" * 12 + str(tmp_path / "evil").lstrip("/")
    base = ["plan", "--model", "llama-3.1-70b", "--context", "8K"]
    assert "unknown GPU profile" in run_error(capsys, *base, "--gpu", relative)
    line = run_error(capsys, "compare", relative, "--context", "8K")
    assert "unknown model" in line


def test_internal_errors_are_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import planner.cli.models as cli_models

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(cli_models, "compare_models", broken)
    assert main(["compare", "llama-3.1-70b", "--context", "8K"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("kvplan: internal error: ZeroDivisionError")
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "compare", "llama-3.1-70b", "--context", "8K"])


def test_model_show_flags_beyond_max_context(capsys: pytest.CaptureFixture[str]) -> None:
    # Llama-3.1-70B: 327,680 B per token x 1,048,576 = 343,597,383,680 B, computed and flagged.
    beyond = run_json(capsys, "model", "show", "llama-3.1-70b", "--context", "1M")
    assert beyond["beyond_max_context"] is True
    assert beyond["kv_bytes_per_sequence"] == 343_597_383_680
    within = run_json(capsys, "model", "show", "llama-3.1-70b", "--context", "128K")
    assert within["beyond_max_context"] is False
