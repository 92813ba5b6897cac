"""A calibrated GPU profile: the efficiency curves fitted to one GPU's own measurements.

``kvplan calibrate --gpu NAME --out FILE`` writes it; ``--gpu-profile FILE`` on ``plan``,
``simulate``, ``search`` (and the dashboard's upload) makes the planner time operators
with its curves. The file holds:
- ``fits``: the curves in the format of ``hardware_profiles/fits/<gpu>/<engine>.yaml``
  (``planner.plan.efficiency.schema.KernelFits``), each with its fit quality on
  measurements it did not see; efficiencies are fractions of the peaks of the kvplan GPU
  profile ``gpu`` names;
- ``checks``: measurements kept out of a fit, against the fitted curve, and why;
- ``measurements`` / ``skipped``: every raw measurement and what could not be measured;
- ``environment`` / ``settings`` / ``collectives``: device, driver, CUDA, PyTorch and
  kernel-library versions, the date, the benchmark settings, whether collectives ran.
Curves the file lacks come from the engine's fitted curves for that GPU (or the GPU
profile's analytic defaults); every output says which source each curve came from.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from planner.calibrate.kernels import KernelCalibration, copy_bandwidth_bytes_per_s, fit_all
from planner.calibrate.raw import (
    RAW_FORMAT,
    RAW_FORMAT_VERSION,
    Collectives,
    RawDocument,
    Record,
    raw_from_data,
)
from planner.errors import ConfigError
from planner.hardware import GPU
from planner.io import (
    MAX_DOCUMENT_BYTES,
    decode_text,
    parse_document,
    read_document,
    write_text_atomic,
)
from planner.plan.efficiency.schema import KernelFits
from planner.schema import GpuCalibration
from planner.validation import check_sources, validate

PROFILE_KIND = "kvplan-calibrated-gpu"
SCRIPT = "kvplan calibrate (planner/calibrate)"
# A GPU model's name in a device or profile name: H100, H200, B200, A100, H20, H800, MI300X.
_MODEL_NAME = re.compile(r"\b((?:[A-Z]{1,2}\d{2,4}[A-Z]?)|(?:MI\d{3}[A-Z]?))\b")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckRecord(_Frozen):
    curve: str = Field(max_length=100)
    what: str = Field(max_length=500)
    points: int = Field(ge=1)
    median_measured_over_curve: float = Field(gt=0, le=1e6)
    p10_measured_over_curve: float = Field(gt=0, le=1e6)
    p90_measured_over_curve: float = Field(gt=0, le=1e6)
    reason: str = Field(max_length=500)


class CalibratedProfile(_Frozen):
    """See the module docstring."""

    kind: Literal["kvplan-calibrated-gpu"]
    gpu: str = Field(max_length=100, description="kvplan GPU profile whose peaks are used")
    measured_device: str = Field(max_length=200)
    measured_on: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}")
    copy_bandwidth_tb_per_s: float | None = Field(None, gt=0, le=1000)
    fits: KernelFits
    checks: list[CheckRecord] = Field(default_factory=list, max_length=1000)
    collectives: Collectives
    environment: dict[str, Any]
    settings: dict[str, Any]
    measurements: list[Record] = Field(max_length=100_000)
    skipped: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How outputs name this calibration."""
        torch_version = self.fits.provenance.package_version
        return (
            f"calibrated {self.gpu} ({self.measured_device}, PyTorch {torch_version}, "
            f"{self.measured_on})"
        )

    def calibration(self) -> GpuCalibration:
        """The curves as a deployment carries them (``Deployment.gpu_calibration``)."""
        return GpuCalibration(
            gpu=self.gpu,
            label=self.label,
            kernel_fits_json=self.fits.model_dump_json(exclude_none=True),
        )


def gpu_model_name(text: str) -> str | None:
    found = _MODEL_NAME.findall(text.upper())
    return found[0] if found else None


def check_device_matches(device: str, gpu: GPU) -> None:
    """Refuse measurements of one GPU model filed under another's profile (their
    efficiencies would be fractions of the wrong peaks)."""
    measured = gpu_model_name(device)
    profile = gpu_model_name(gpu.profile.display_name or gpu.name) or gpu_model_name(
        gpu.name.upper()
    )
    if measured and profile and measured != profile:
        raise ConfigError(
            f"the measurements are of a {device}, not of the GPU profile's {profile}",
            field="gpu",
            value=gpu.name,
            expected=f"the kvplan profile of the measured GPU ({measured})",
        )


def _engine_versions(env: dict[str, Any]) -> str:
    parts = [f"PyTorch {env.get('torch', '?')} kernels"]
    if env.get("cuda_runtime"):
        parts.append(f"CUDA {env['cuda_runtime']}")
    if env.get("cudnn"):
        parts.append(f"cuDNN {env['cudnn']}")
    for name, version in sorted((env.get("kernel_packages") or {}).items()):
        parts.append(f"{name} {version}")
    return ", ".join(parts)


def build_profile(
    raw: RawDocument, gpu: GPU, engine: str, today: datetime.date | None = None
) -> tuple[dict[str, Any], KernelCalibration]:
    """The calibrated profile document for ``raw`` measured on ``gpu``, validated, and the
    fits behind it (for printing their quality)."""
    check_device_matches(raw.device_name, gpu)
    calibration = fit_all(raw, gpu)
    env = raw.environment
    measured_on = str(env.get("date_utc", ""))[:10] or (today or datetime.date.today()).isoformat()
    fitted_on = (today or datetime.date.today()).isoformat()
    fits: dict[str, Any] = {
        "gpu": gpu.name,
        "engine": engine,
        "provenance": {
            "package": "torch",
            "package_version": str(env.get("torch", "unknown")),
            "system": raw.device_name,
            "engine_version": _engine_versions(env),
            "fitted_on": fitted_on,
            "script": SCRIPT,
        },
    }
    for c in calibration.curves:
        if c.key is None:
            fits[c.section] = c.entry
        else:
            fits.setdefault(c.section, {})[c.key] = c.entry
    fit_sections = [k for k in ("gemm", "grouped_gemm", "attention", "elementwise") if k in fits]
    fits["sources"] = {
        "gpu": "kvplan GPU profile named with --gpu; efficiencies are fractions of its peaks",
        "engine": "engine whose fit file these curves can stand in for; --gpu-profile applies "
        "them under any engine",
        "provenance": f"microbenchmarks run by {SCRIPT} on {raw.device_name}",
        **{
            k: f"fitted by {SCRIPT} to this file's measurements (op '{k}'); table, rows and "
            "error on unseen points under each curve's 'fit'"
            for k in fit_sections
        },
    }
    fits["notes"] = [
        "Measured through PyTorch's kernels (cuBLAS/cuBLASLt GEMMs, torch grouped GEMM, "
        "SDPA attention): an engine's own kernels (FlashAttention-3, FlashInfer, FlashMLA, "
        "DeepGEMM, fused MoE) can be faster or slower; curves not measured here come from "
        "the engine's fitted curves or the analytic defaults.",
    ]
    copy_bw = copy_bandwidth_bytes_per_s(raw)
    notes = [
        "Collectives were not measured: " + (raw.collectives.reason or "")
        if not raw.collectives.measured
        else f"Collectives measured over {raw.collectives.gpus} GPUs of one machine "
        "(raw measurements only; no collective curve is fitted yet).",
    ]
    if not any(c.name == "attention.mla_decode" for c in calibration.curves):
        notes.append(
            "MLA decode (576-dim latent keys) runs in no PyTorch SDPA backend here "
            "(head dim above 256); its curve is not calibrated."
        )
    doc: dict[str, Any] = {
        "kind": PROFILE_KIND,
        "gpu": gpu.name,
        "measured_device": raw.device_name,
        "measured_on": measured_on,
        "copy_bandwidth_tb_per_s": round(copy_bw / 1e12, 4) if copy_bw else None,
        "fits": fits,
        "checks": [c.as_dict() for c in calibration.checks],
        "collectives": raw.collectives.model_dump(exclude_none=True),
        "environment": env,
        "settings": raw.settings,
        "measurements": [r.model_dump(exclude_none=True) for r in raw.measurements],
        "skipped": raw.skipped,
        "sources": {
            "kind": "kvplan calibrated GPU profile format (planner/calibrate/profile.py)",
            "gpu": "the --gpu argument: kvplan GPU profile whose peaks the efficiencies divide",
            "measured_device": "torch.cuda.get_device_name(0) on the measured machine",
            "measured_on": "date of the measurements (UTC), from the environment record",
            "copy_bandwidth_tb_per_s": "bytes read + written by the largest device copy "
            "over its time (this file's measurements)",
            "fits": f"fitted by {SCRIPT}; see fits.sources",
            "checks": "measurements kept out of a fit, against the fitted curve",
            "collectives": "whether NCCL collectives were measured, and why not",
            "environment": "device, driver, CUDA, PyTorch and kernel-library versions as "
            "PyTorch and nvidia-smi reported them",
            "settings": "benchmark settings of the run",
            "measurements": "raw measurements (median of repeated CUDA-graph replays)",
            "skipped": "shapes or kernels not measured, with the reason",
        },
        "notes": notes,
    }
    if doc["copy_bandwidth_tb_per_s"] is None:
        del doc["copy_bandwidth_tb_per_s"], doc["sources"]["copy_bandwidth_tb_per_s"]
    profile = validate(CalibratedProfile, doc, "calibrated profile")
    KernelFits.model_validate(fits)
    return profile.model_dump(mode="json", exclude_none=True), calibration


def profile_yaml(doc: dict[str, Any]) -> str:
    """YAML text of a profile, one line per raw measurement (files stay readable)."""
    head = {k: v for k, v in doc.items() if k not in ("measurements", "skipped", "sources")}
    text: str = f"# Written by {SCRIPT}: curves fitted to this GPU's own measurements.\n"
    text += str(yaml.safe_dump(head, sort_keys=False, width=100))
    for key in ("measurements", "skipped"):
        text += f"{key}:\n" if doc[key] else f"{key}: []\n"
        for record in doc[key]:
            line = str(yaml.safe_dump(record, default_flow_style=True, width=100_000)).strip()
            text += f"- {line}\n"
    text += str(yaml.safe_dump({"sources": doc["sources"]}, sort_keys=False, width=100))
    return text


def profile_json(doc: dict[str, Any]) -> str:
    """JSON text of a profile, one line per raw measurement (quick to load: ~0.2 s
    against ~3 s for the same profile in YAML)."""
    head = {k: v for k, v in doc.items() if k not in ("measurements", "skipped", "sources")}
    body = json.dumps(head, indent=1, allow_nan=False)[:-2]
    parts = [body]
    for key in ("measurements", "skipped"):
        rows = ",\n  ".join(json.dumps(r, allow_nan=False) for r in doc[key])
        parts.append(f' "{key}": [\n  {rows}\n ]' if rows else f' "{key}": []')
    parts.append(' "sources": ' + json.dumps(doc["sources"], indent=1).replace("\n", "\n "))
    return ",\n".join(parts) + "\n}\n"


def write_profile(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a profile as JSON (a ``.json`` path) or YAML (any other)."""
    as_json = Path(path).suffix.lower() == ".json"
    text = profile_json(doc) if as_json else profile_yaml(doc)
    profile_from_data(parse_document(text, str(path), json_only=as_json), str(path))
    write_text_atomic(path, text, field="out")


def profile_from_data(data: Any, where: str) -> CalibratedProfile:
    if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
        raise ConfigError(
            "not a kvplan calibrated GPU profile",
            where=where,
            field="kind",
            value=data.get("kind") if isinstance(data, dict) else None,
            expected=f"'{PROFILE_KIND}' (written by kvplan calibrate --gpu NAME --out FILE)",
        )
    check_sources(data, where)
    profile = validate(CalibratedProfile, data, where)
    if profile.fits.gpu != profile.gpu:
        raise ConfigError(
            "the fitted curves name another GPU than the profile",
            where=where,
            field="fits.gpu",
            value=profile.fits.gpu,
            expected=profile.gpu,
        )
    return profile


def profile_from_bytes(data: bytes, where: str) -> CalibratedProfile:
    """A calibrated profile uploaded as bytes (the dashboard), bounded and validated as a
    file is: size, UTF-8, JSON or YAML, the profile format, sources."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            f"{len(data):,} bytes is over the {MAX_DOCUMENT_BYTES:,}-byte limit", where=where
        )
    return profile_from_data(parse_document(decode_text(data, where), where), where)


def load_profile(path: str | Path) -> CalibratedProfile:
    """A calibrated GPU profile file, bounded and validated."""
    return profile_from_data(read_document(path), str(path))


def profile_raw(profile: CalibratedProfile) -> RawDocument:
    """The raw measurements a profile holds, as ``planner.calibrate.measure`` wrote them:
    refitting them gives the profile's curves again, the same points held out (the split
    is seeded), so their held-out error can be checked from the profile alone."""
    return RawDocument(
        format=RAW_FORMAT,
        format_version=RAW_FORMAT_VERSION,
        environment=profile.environment,
        settings=profile.settings,
        collectives=profile.collectives,
        measurements=profile.measurements,
        skipped=profile.skipped,
        elapsed_s=0.0,
    )


def load_measurements(path: str | Path) -> RawDocument:
    """Raw measurements from a raw file (``python -m planner.calibrate.measure``) or from
    a calibrated profile (its ``measurements``)."""
    data = read_document(path)
    if isinstance(data, dict) and data.get("kind") == PROFILE_KIND:
        return profile_raw(profile_from_data(data, str(path)))
    return raw_from_data(data, str(path))
