"""Test configuration: hypothesis runs derandomized under CI (CI=true), so a submission
is judged on the same examples every time; locally it explores new examples each run."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
