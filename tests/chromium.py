"""Render a page in headless Chromium and look at the pixels (report tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest


def screenshot(page: Path, work: Path, height: int = 5000) -> np.ndarray:
    """The page as Chromium draws it: RGB in [0, 1]. Skips when Chromium is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium not installed (Debian package chromium; `make test` installs it)")
    shot = work / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={work / 'profile'}",
            "--hide-scrollbars",
            f"--window-size=1200,{height}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), "Chromium took no screenshot"
    pixels: np.ndarray = matplotlib.image.imread(str(shot))[:, :, :3]
    return pixels


def count_colour(pixels: np.ndarray, rgb: tuple[int, int, int], within: float = 0.08) -> int:
    """How many pixels are this colour (0-255 each), give or take `within`."""
    found = np.ones(pixels.shape[:2], dtype=bool)
    for channel, value in enumerate(rgb):
        found &= abs(pixels[:, :, channel] - value / 255) < within
    return int(found.sum())
