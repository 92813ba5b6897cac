"""kvplan calibrate: fit kvplan's efficiency model to the user's own GPUs and engine.

- ``measure``, ``timing``, ``collectives``, ``environment``: microbenchmarks on the user's
  GPU (PyTorch, an optional extra: ``pip install -e ".[calibrate]"``). They import only
  the standard library and PyTorch, so ``python -m planner.calibrate.measure`` runs on a
  GPU machine without kvplan's other dependencies and writes raw measurements as JSON.
- ``raw``, ``fit``, ``profile``: the raw-measurement format, the curve fitting (shared
  with ``benchmarks/fit``) and the calibrated GPU profile (the fitted curves in the format
  of ``hardware_profiles/fits``, the raw data and the environment). No PyTorch.
- ``logs``, ``bench``, ``terms``: engine start-up logs and serving-benchmark results
  turned into a deployment's engine terms (memory) and step-time correction. No PyTorch.

Nothing else in kvplan imports PyTorch; this package's torch modules import it inside.
"""
