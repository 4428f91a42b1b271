#!/usr/bin/env python3
"""`cdk synth` / `cdk deploy` entry point (see cdk.json and docs/deploy.md)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pixdex_infra import build_app

if __name__ == "__main__":
    app, _stack = build_app()
    app.synth()
