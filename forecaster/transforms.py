"""Variance-stabilising transform for demand counts: a scaled log1p, exactly invertible.

    z = log1p(y / s)            y = s * expm1(z)            (y >= 0, s > 0)

`s` is a robust level of the history: the median of its positive values (1.0 when there are
none). Why this and not Box-Cox / Yeo-Johnson:
- zeros are real (nights, shutdowns) and map to z = 0 with no shift parameter to pick;
- for y >> s it is log(y) - log(s): multiplicative effects (a sale at 16x, daily cycles that scale
  with the level) become additive, which is what Prophet's additive model and the ebb regressor
  exp(-t/tau) assume;
- dividing by s makes it scale-free: the same series in requests/s or requests/min gives the
  same z up to the tiny curvature near 0, so no constant depends on a trace's units;
- it has no fitted exponent, so it is stable and exactly invertible on every value.
Forecast intervals are built in z and mapped back, so they are asymmetric in y (wider above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Log1pScaled:
    """z = log1p(y / scale). `scale` (> 0) is in the series' own units."""

    scale: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {self.scale}")

    @classmethod
    def fit(cls, y: np.ndarray, fraction: float = 1.0) -> "Log1pScaled":
        """Scale = `fraction` x the median of the finite positive values of `y` (1.0 if there
        are none). A fraction below 1 makes z closer to log(y) over the usual range (so a
        daily cycle that scales with the level stays additive in z) while zeros still map to 0."""
        if not (np.isfinite(fraction) and fraction > 0):
            raise ValueError(f"fraction must be a positive finite number, got {fraction}")
        v = np.asarray(y, dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        return cls(fraction * float(np.median(v)) if v.size else 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        """y (>= 0; negatives are clipped to 0, NaN stays NaN) -> z."""
        v = np.asarray(y, dtype=float)
        return np.log1p(np.clip(v, 0.0, None) / self.scale)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """z -> y = scale * expm1(z), clipped at 0 (z < 0 would mean negative demand)."""
        return np.clip(self.scale * np.expm1(np.asarray(z, dtype=float)), 0.0, None)

    def describe(self) -> str:
        return f"log1p(y / {self.scale:.6g})"
