"""GPU profiles: one YAML per accelerator in ``hardware_profiles/``, validated on load.

A user adds a GPU by adding one file. Each profile carries a ``sources`` map (checked like
the model catalog: every field sourced, no source for a field that does not exist).
Math on a dtype the GPU has no tensor-core path for falls back to the next wider native
dtype: FP4 weights on Hopper run at FP8 speed, FP8 weights on Ampere at BF16 speed.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from planner.errors import ConfigError, UnknownNameError, one_of
from planner.schema import HardwareProfile
from planner.validation import named_data_file, sourced_document

PROFILE_DIR_ENV = "KVPLAN_HARDWARE_DIR"
DEFAULT_PROFILE_DIR = Path(__file__).resolve().parent.parent / "hardware_profiles"
TFLOP = 1e12
TB = 1e12
GB = 1e9
GIB = 2**30

# Where a non-native dtype's math runs instead (weights are up-converted).
MATH_FALLBACK = {"fp4": "fp8", "fp8": "bf16", "int8": "bf16", "fp16": "bf16", "fp32": "bf16"}


def profile_dir() -> Path:
    return Path(os.environ.get(PROFILE_DIR_ENV, DEFAULT_PROFILE_DIR))


class GPU:
    """A validated profile with derived rates in SI units."""

    def __init__(self, profile: HardwareProfile) -> None:
        self.profile = profile
        self.name = profile.name
        self.hbm_bytes = profile.hbm_gib * GIB
        self.hbm_bandwidth_bytes_per_s = profile.hbm_bandwidth_tb_per_s * TB
        eff = profile.efficiency
        self.achievable_bandwidth_bytes_per_s = (
            self.hbm_bandwidth_bytes_per_s * eff.bandwidth_fraction
        )
        # Vendors quote scale-up bandwidth for both directions; a collective's send rate is
        # one direction.
        self.link_bytes_per_s_one_way = profile.interconnect.bandwidth_gb_per_s * GB / 2
        self.achievable_link_bytes_per_s = self.link_bytes_per_s_one_way * eff.interconnect_fraction

    def math_dtype(self, dtype: str) -> str:
        """The dtype the tensor cores actually run for operands stored as ``dtype``."""
        current = dtype
        while True:
            spec = self.profile.compute.get(current)  # type: ignore[call-overload]
            if spec is not None and spec.native:
                return current
            current = MATH_FALLBACK.get(current, "bf16")

    def peak_flop_per_s(self, dtype: str) -> float:
        spec = self.profile.compute[self.math_dtype(dtype)]  # type: ignore[index]
        assert spec.peak_tflop_per_s is not None
        return spec.peak_tflop_per_s * TFLOP

    def achievable_flop_per_s(self, dtype: str) -> float:
        return self.peak_flop_per_s(dtype) * self.profile.efficiency.flops_fraction

    def kernel_overhead_s(self, cuda_graphs: bool) -> float:
        eff = self.profile.efficiency
        us = eff.kernel_overhead_us if cuda_graphs else eff.kernel_overhead_no_graphs_us
        return us * 1e-6

    @property
    def price_usd_per_hour(self) -> float:
        return self.profile.price.default_usd_per_gpu_hour


def gpu_names(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or profile_dir()).glob("*.yaml"))


def profile_from_file(path: Path) -> HardwareProfile:
    return sourced_document(path, HardwareProfile, "a hardware profile")


@cache
def _load(directory: str, name: str) -> GPU:
    return GPU(profile_from_file(named_data_file(Path(directory), name, "gpu", "GPU profile")))


def gpu_aliases(directory: Path | None = None) -> dict[str, str]:
    """Other names a profile accepts (its ``aliases`` list, e.g. h100 -> h100-sxm)."""
    folder = directory or profile_dir()
    names = gpu_names(folder)
    aliases: dict[str, str] = {}
    for name in names:
        for alias in _load(str(folder), name).profile.aliases:
            key = alias.lower()
            if key in names or aliases.get(key, name) != name:
                raise ConfigError(
                    "alias names another profile too",
                    where=f"{name}.yaml",
                    field="aliases",
                    value=alias,
                )
            aliases[key] = name
    return aliases


def resolve_gpu_name(name: str) -> str:
    """The profile name for what a user typed: a profile name or one of its aliases (any
    case); an unknown name gets a 'did you mean' and the list."""
    names = gpu_names()
    if name in names:
        return name
    key = name.strip().lower()
    if key in names:
        return key
    aliases = gpu_aliases()
    if key in aliases:
        return aliases[key]
    raise UnknownNameError(
        "unknown GPU profile", field="gpu", value=name, expected=one_of(name, names, aliases)
    )


def load_gpu(name: str) -> GPU:
    """A GPU profile by name (file stem in hardware_profiles/, e.g. 'h200') or alias
    ('h100' for 'h100-sxm')."""
    return _load(str(profile_dir()), resolve_gpu_name(name))
