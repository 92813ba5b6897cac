"""Where AIConfigurator's measured tables are, and how to read them (pandas + pyarrow).

AIConfigurator (pip ``aiconfigurator``, NVIDIA ai-dynamo/aiconfigurator, Apache-2.0) ships
silicon-measured operator tables inside ``aiconfigurator_core/systems/data/<system>/<op>/
<engine>/<engine version>/*.parquet``. Only the data is read; no AIConfigurator code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

AIC_PACKAGE = "aiconfigurator"
# Engine versions AIConfigurator 0.12.0 measured on H100/H200/B200 (its defaults).
ENGINE_VERSIONS = {"trtllm": "1.3.0rc20", "vllm": "0.24.0", "sglang": "0.5.14"}
# kvplan GPU profile for each AIConfigurator system.
SYSTEM_TO_GPU = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}


def data_root() -> Path:
    import aiconfigurator_core

    return Path(aiconfigurator_core.__file__).resolve().parent / "systems" / "data"


def aic_version() -> str:
    return metadata.version(AIC_PACKAGE)


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    path: str  # inside the package, e.g. aiconfigurator_core/systems/data/h200_sxm/gemm/...
    version: str  # engine version of the folder


def _versions(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True)


def find_table(system: str, op: str, engine: str, filename: str) -> Table | None:
    """The engine's pinned version of a table, else its newest version that has it."""
    folder = data_root() / system / op / engine
    if not folder.is_dir():
        return None
    pinned = ENGINE_VERSIONS.get(engine)
    candidates = ([pinned] if pinned else []) + _versions(folder)
    for version in candidates:
        path = folder / version / filename
        if path.is_file():
            rel = path.relative_to(data_root().parents[2])
            return Table(pd.read_parquet(path), str(rel), version)
    return None
