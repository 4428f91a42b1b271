"""pixdex's AWS deployment: one CDK stack built from small constructs (see infra/README.md).

jsii runs aws-cdk-lib in Node.js; its Node-version banner is noise in tests and `cdk synth`,
so it is silenced before aws_cdk is first imported.
"""

from __future__ import annotations

import os

# Node 20 (on the dev and CI machines) is past its end of life for jsii; it still works.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from .application import build_app
from .config import InfraConfig, InfraConfigError, context_keys, load_config

__all__ = ["InfraConfig", "InfraConfigError", "build_app", "context_keys", "load_config"]
