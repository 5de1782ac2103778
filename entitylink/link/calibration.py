"""Calibration: a score turned into the probability that the top candidate is right.

Fitted on a dev split (the top candidate's score of each query, and whether it was right), stored in
the linking policy, and applied by the :class:`~entitylink.link.linker.Linker` to every candidate's
score, so a threshold of 0.7 means "70% likely right" whatever the model or ontology.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Kind = Literal["isotonic", "platt"]


@dataclass(frozen=True)
class Calibration:
    """A monotonic map from scores to probabilities.

    ``isotonic``: a non-decreasing step function through ``points`` ((score, probability) pairs,
    interpolated linearly between them, flat beyond); ``platt``: ``1 / (1 + exp(-(a·score + b)))``.
    """

    kind: Kind = "isotonic"
    points: tuple[tuple[float, float], ...] = ()
    a: float = 1.0
    b: float = 0.0
    n: int = 0

    def __call__(self, scores: np.ndarray | Sequence[float] | float) -> np.ndarray:
        values = np.asarray(scores, dtype=np.float64)
        if self.kind == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * values + self.b)))
        xs, ys = zip(*self.points) if self.points else ((0.0,), (0.5,))
        return np.interp(values, xs, ys)

    @classmethod
    def fit(cls, scores: Sequence[float], correct: Sequence[bool], kind: Kind = "isotonic") -> Calibration:
        """Fit on top-candidate scores and whether each top candidate was right."""
        x = np.asarray(scores, dtype=np.float64)
        y = np.asarray(correct, dtype=np.float64)
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"calibration needs at least two (score, right) pairs, got {len(x)} and {len(y)}")
        if kind == "platt":
            from sklearn.linear_model import LogisticRegression

            if len(set(y)) < 2:
                return cls(kind="platt", a=0.0, b=float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3))), n=len(x))
            model = LogisticRegression(C=1e6).fit(x[:, None], y)
            return cls(kind="platt", a=float(model.coef_[0, 0]), b=float(model.intercept_[0]), n=len(x))
        if kind != "isotonic":
            raise ValueError(f"calibration kind must be 'isotonic' or 'platt', not {kind!r}")
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        points = tuple((float(a), float(b)) for a, b in zip(model.X_thresholds_, model.y_thresholds_))
        return cls(kind="isotonic", points=points, n=len(x))

    def to_dict(self) -> dict[str, Any]:
        content = asdict(self)
        content["points"] = [list(p) for p in self.points]
        return content

    @classmethod
    def from_dict(cls, content: dict[str, Any]) -> Calibration:
        points = tuple((float(a), float(b)) for a, b in content.get("points", ()))
        return cls(kind=content.get("kind", "isotonic"), points=points, a=float(content.get("a", 1.0)),
                   b=float(content.get("b", 0.0)), n=int(content.get("n", 0)))


def reliability(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict[str, float]]:
    """Per bin of predicted probability: its mean, the share right, and the count (a reliability table)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            rows.append({"from": float(lo), "to": float(hi), "predicted": float(p[inside].mean()),
                         "right": float(y[inside].mean()), "n": int(inside.sum())})
    return rows


def expected_calibration_error(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    rows = reliability(probabilities, correct, bins)
    total = sum(r["n"] for r in rows)
    return float(sum(r["n"] * abs(r["predicted"] - r["right"]) for r in rows) / total) if total else 0.0


def plot_reliability(curves: dict[str, tuple[Sequence[float], Sequence[bool]]], path: str | Path,
                     bins: int = 10) -> Path:
    """A reliability diagram (PNG): predicted probability against the share right, one line per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
    for label, (probs, correct) in curves.items():
        rows = reliability(probs, correct, bins)
        ece = expected_calibration_error(probs, correct, bins)
        ax.plot([r["predicted"] for r in rows], [r["right"] for r in rows], marker="o",
                label=f"{label} (ECE {ece:.3f})")
    ax.set_xlabel("predicted probability that the top candidate is right")
    ax.set_ylabel("share right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
