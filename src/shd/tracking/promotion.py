"""The promotion policy, pure (no store): which of two evaluated versions should hold the `champion`
alias, and the configuration that names the model and the split-mismatch policy.

Comparison (lower 1-NNA wins; ties: lower MMD, then higher COV) is only between versions evaluated on
the same test split with the same protocol (fingerprints in the version tags). A version whose 1-NNA,
MMD or COV is missing or NaN is never promoted. When the champion was scored on another split or
protocol its numbers do not compare: `on_split_mismatch` decides (`promote`: the new version, scored
on the current split, replaces it; `keep`: the champion stays until someone promotes by hand).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shd.errors import InputError

POLICIES = ("promote", "keep")


@dataclass(frozen=True)
class RegisterConfig:
    """params.yaml section `register`."""

    model_name: str | None = None  # None: shd-<category>[-<category>...]
    on_split_mismatch: str = "promote"  # champion scored on another test split/protocol: promote | keep

    def __post_init__(self) -> None:
        if self.on_split_mismatch not in POLICIES:
            raise InputError(
                "register.on_split_mismatch", f"expected one of {POLICIES}, got {self.on_split_mismatch!r}"
            )


def model_name(categories: list[str], override: str | None = None) -> str:
    """`shd-<category>` (several categories: `shd-<cat1>-<cat2>`), unless params name one."""
    return override or "shd-" + "-".join(categories)


@dataclass(frozen=True)
class Score:
    """The evaluation numbers a decision reads; NaN where missing."""

    nna: float
    mmd: float
    cov: float

    @classmethod
    def from_mapping(cls, values: dict[str, Any], prefix: str = "") -> Score:
        def num(key: str) -> float:
            try:
                return float(values.get(prefix + key))
            except (TypeError, ValueError):
                return math.nan

        return cls(num("nna"), num("mmd"), num("cov"))

    @property
    def usable(self) -> bool:
        return all(math.isfinite(x) for x in (self.nna, self.mmd, self.cov))

    def key(self) -> tuple[float, float, float]:
        """Sort key: smaller is better (1-NNA, then MMD, then COV descending)."""
        return self.nna, self.mmd, -self.cov

    def tags(self) -> dict[str, str]:
        return {f"metric.{k}": repr(v) for k, v in (("nna", self.nna), ("mmd", self.mmd), ("cov", self.cov))}

    def __str__(self) -> str:
        return f"1-NNA {self.nna:.4g}, MMD {self.mmd:.4g}, COV {self.cov:.4g}"


@dataclass(frozen=True)
class Candidate:
    """A version as the comparison sees it: its score and where it was scored."""

    version: str | None
    score: Score
    test_split: str
    protocol: str

    @classmethod
    def from_tags(cls, version: str, tags: dict[str, str]) -> Candidate:
        return cls(
            version,
            Score.from_mapping(tags, "metric."),
            tags.get("test_split_fingerprint", ""),
            tags.get("eval_protocol_fingerprint", ""),
        )


@dataclass(frozen=True)
class Decision:
    promote: bool
    outcome: str  # promoted | kept | refused
    reason: str

    def tags(self, champion: Candidate | None) -> dict[str, str]:
        return {
            "decision": self.outcome,
            "decision_reason": self.reason[:5000],
            "compared_with": f"version {champion.version}" if champion else "none",
        }


def decide(new: Candidate, champion: Candidate | None, on_split_mismatch: str = "promote") -> Decision:
    """Should `new` take the champion alias? (Pure: the policy in one place, tested directly.)"""
    if on_split_mismatch not in POLICIES:
        raise InputError(
            "register.on_split_mismatch", f"expected one of {POLICIES}, got {on_split_mismatch!r}"
        )
    if not new.score.usable:
        return Decision(False, "refused", f"missing or NaN metrics ({new.score}): never promoted")
    if champion is None:
        return Decision(True, "promoted", f"no champion yet; {new.score}")
    if (new.test_split, new.protocol) != (champion.test_split, champion.protocol):
        what = "test split" if new.test_split != champion.test_split else "evaluation protocol"
        why = (
            f"champion v{champion.version} was scored on another {what}, its numbers do not compare; "
            f"policy on_split_mismatch={on_split_mismatch}"
        )
        return Decision(
            on_split_mismatch == "promote", "promoted" if on_split_mismatch == "promote" else "kept", why
        )
    if not champion.score.usable or new.score.key() < champion.score.key():
        return Decision(
            True, "promoted", f"{new.score} beats champion v{champion.version} ({champion.score})"
        )
    return Decision(
        False, "kept", f"{new.score} does not beat champion v{champion.version} ({champion.score})"
    )
