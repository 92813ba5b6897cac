"""Uploads: what the user types is a label, never a path; files get generated names in one
private folder; a second upload never replaces the first; uploaded scenarios read no
server files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from planner.errors import KvplanError
from planner.model.catalog import catalog_names
from planner.ui import uploads
from planner.ui.uploads import (
    CONFIG_UPLOAD_LIMIT_BYTES,
    LABEL_MAX_CHARS,
    add_config_upload,
    clean_label,
    uploaded_scenario,
)

CONFIG = (
    Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs" / "llama-3.1-70b.json"
).read_bytes()


@pytest.fixture
def private(tmp_path, monkeypatch) -> Path:
    """The private folder three levels below tmp_path, so '../../..' from it stays inside
    tmp_path and every file written anywhere there can be listed."""
    folder = tmp_path / "a" / "b" / "c" / "private"
    folder.mkdir(parents=True)
    monkeypatch.setattr(uploads, "_private_dir", folder)
    return folder


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "name",
    [
        "../../../x",  # the old code wrote <private>/../../../x.json = tmp_path/a/x.json
        "../../../../some/dir/x",
        "/etc/kvplan-x",
        "a/b\\c",
        "x" * 300,
        "",
        "\x00\n../",
    ],
)
def test_a_typed_name_never_becomes_a_path(private, tmp_path, name):
    customs: dict[str, str] = {}
    label = add_config_upload(CONFIG, name, "config.json", customs, set())
    written = files_under(tmp_path)
    assert len(written) == 1  # exactly the one stored upload, inside the private folder
    stored = written[0]
    assert stored.parent == private
    assert stored.suffix == ".json" and len(stored.stem) == 32  # uuid4 hex
    assert int(stored.stem, 16) >= 0
    assert customs == {label: str(stored)}
    assert stored.read_bytes() == CONFIG
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not (tmp_path / "a" / "x.json").exists()
    assert "/" not in label and "\\" not in label and "," not in label
    assert 1 <= len(label) <= LABEL_MAX_CHARS
    assert label.isprintable()


def test_the_private_folder_is_private(monkeypatch):
    monkeypatch.setattr(uploads, "_private_dir", None)
    folder = uploads.private_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_second_upload_under_the_same_name_gets_a_new_label(private):
    customs: dict[str, str] = {}
    first = add_config_upload(CONFIG, "custom-model", "a.json", customs, set())
    second = add_config_upload(CONFIG, "custom-model", "b.json", customs, set())
    assert (first, second) == ("custom-model", "custom-model (2)")
    assert customs[first] != customs[second]
    assert all(Path(p).is_file() for p in customs.values())


def test_a_label_never_shadows_a_catalog_model(private):
    customs: dict[str, str] = {}
    label = add_config_upload(CONFIG, "deepseek-v3.2", "c.json", customs, set(catalog_names()))
    assert label == "deepseek-v3.2 (2)"


def test_labels_are_cleaned_and_bounded():
    assert clean_label("  my   model ") == "my model"
    assert clean_label("a,b") == "a-b"
    assert len(clean_label("y" * 300)) == LABEL_MAX_CHARS
    assert clean_label("\t") == "custom-model"


def test_size_cap_and_invalid_config(private, tmp_path):
    with pytest.raises(KvplanError, match="over the"):
        add_config_upload(b" " * (CONFIG_UPLOAD_LIMIT_BYTES + 1), "x", "big.json", {}, set())
    with pytest.raises(KvplanError, match="model_type"):
        add_config_upload(b'{"hidden_size": 8}', "x", "bad.json", {}, set())
    assert files_under(tmp_path) == []  # nothing stored for a rejected upload


SCENARIO = """
name: up
model: {model}
gpu: h200
duration_s: 10
workload:
  arrival: {{kind: poisson, rate_per_s: 1}}
  classes:
    - name: c
      share: 1
      input_tokens: {input}
      output_tokens: {{kind: constant, value: 10}}
      slo: {{ttft_s: 2, tpot_s: 0.1}}
"""
CONSTANT = "{kind: constant, value: 100}"


def test_uploaded_scenario_names_catalog_or_session_models_only():
    ok = uploaded_scenario(SCENARIO.format(model="deepseek-v4-flash", input=CONSTANT), "s", {})
    assert ok.model == "deepseek-v4-flash"
    mine = uploaded_scenario(
        SCENARIO.format(model="mine", input=CONSTANT), "s", {"mine": "/private/x.json"}
    )
    assert mine.model == "/private/x.json"
    for path in ("/etc/passwd.json", "../../x.json", "models/m.json"):
        with pytest.raises(KvplanError, match="field 'model'"):
            uploaded_scenario(SCENARIO.format(model=path, input=CONSTANT), "s", {})


def test_uploaded_scenario_reads_no_server_file():
    empirical = "{kind: empirical, file: /etc/hosts}"
    with pytest.raises(KvplanError, match=r"workload\.classes\[0\]\.input_tokens"):
        uploaded_scenario(SCENARIO.format(model="deepseek-v4-flash", input=empirical), "s", {})
    trace = """
name: t
model: deepseek-v4-flash
gpu: h200
duration_s: 10
workload:
  trace: {path: /etc/hosts, format: csv}
"""
    with pytest.raises(KvplanError, match="upload the trace"):
        uploaded_scenario(trace, "s", {})
    replay = uploaded_scenario(trace, "s", {}, trace_uploaded=True)
    assert replay.workload.trace is not None
    assert replay.workload.trace.path == uploads.UPLOADED_TRACE
