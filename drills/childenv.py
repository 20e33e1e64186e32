"""The environment of a program drills starts: the harness's own, without drills' own secrets.

The signing key (`DRILLS_SIGNING_KEY`) and the proxy API token (`DRILLS_PROXY_TOKEN`) are for
drills alone. A child that inherited them would show them to whoever may read its
/proc/PID/environ, and a daemon a target's `start` command launches would keep them for its
whole life. `DRILLS_SIGNING_KEY_FILE` is only a path and stays."""

from __future__ import annotations

import os
from collections.abc import Mapping

from drills.network.tokens import TOKEN_ENV
from drills.records.signing import KEY_ENV

# Every variable drills reads a secret from; no child of drills gets any of them.
HARNESS_SECRETS = (KEY_ENV, TOKEN_ENV)


def without_harness_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the variables in HARNESS_SECRETS."""
    return {key: value for key, value in env.items() if key not in HARNESS_SECRETS}


def child_environ(**extra: str) -> dict[str, str]:
    """The harness's environment without HARNESS_SECRETS, then `extra` (which may set anything)."""
    return without_harness_secrets(os.environ) | extra
