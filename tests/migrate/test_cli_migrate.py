"""`kvplan migrate` from the command line: tables, JSON and CSV, one-line errors."""

from __future__ import annotations

import csv
import json

import yaml

from planner.cli import main


def test_migrate_writes_json_and_csv(tmp_path, doc, capsys):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    out_json, out_csv = tmp_path / "m.json", tmp_path / "m.csv"
    argv = ["migrate", str(path), "--scheduler", "serial", "--json", str(out_json)]
    assert main([*argv, "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "hourly timeline" in printed and "break-even" in printed
    data = json.loads(out_json.read_text())
    assert {"summary", "timeline", "fleet_hours", "class_hours", "replicas", "stats"} <= set(data)
    assert len(data["timeline"]) == 3
    summary = data["summary"]
    assert {"days", "steady_before", "steady_after", "cutovers", "migration"} <= set(summary)
    # A negative saving is said as an extra cost, never as "saving $-2,555/month".
    saving = summary["migration"]["monthly_saving_usd"]
    said = " ".join(printed.split())
    if saving >= 0:
        assert f"saving after it ${saving:,.0f}/month" in said
    else:
        assert f"the target costs ${-saving:,.0f}/month more" in said
    assert "$-" not in said
    rows = list(csv.DictReader(out_csv.open()))
    kinds = {r["kind"] for r in rows}
    assert {"production", "fleet"} <= kinds
    fleet_usd = sum(float(r["usd"]) for r in rows if r["kind"] == "fleet")
    assert abs(fleet_usd - sum(d["total_usd"] for d in summary["days"])) < 1e-6


def test_migrate_error_is_one_line(tmp_path, doc, capsys):
    doc["phases"][1]["at_h"] = 0.1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["migrate", str(path), "--scheduler", "serial"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "phases.1.at_h" in err[0]
