"""What a run measures: the scenarios, and the sizes, caps and time budget of a full run or of
`--quick`. Plain data, free of Django: the command line reads it before Django is set up, and the
runner plans its trials from it.
"""

import argparse
from dataclasses import dataclass

SCENARIOS = ("all_due", "replicas", "edits", "duplicates", "idle", "spread")
FULL_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
QUICK_SCENARIOS = ("idle", "all_due", "duplicates")


@dataclass(frozen=True)
class Mode:
    quick: bool
    sizes: tuple[int, ...]
    scenarios: tuple[str, ...]
    cap_s: float
    budget_min: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> "Mode":
        quick = bool(args.quick)
        return cls(
            quick=quick,
            sizes=args.sizes or (QUICK_SIZES if quick else FULL_SIZES),
            scenarios=args.scenarios or (QUICK_SCENARIOS if quick else SCENARIOS),
            cap_s=args.cap or (30.0 if quick else 120.0),
            budget_min=args.budget_minutes or (6.0 if quick else 30.0),
        )

    @property
    def idle_window_s(self) -> float:
        return 10.0 if self.quick else 60.0

    @property
    def order(self) -> tuple[str, ...]:
        """The most important first (a run over budget skips the rest); --quick starts with idle,
        which needs no due minute, and puts the 10k burst last so that it can use the whole cap."""
        if not self.quick:
            return SCENARIOS
        return (*QUICK_SCENARIOS, *(name for name in SCENARIOS if name not in QUICK_SCENARIOS))

    @property
    def duplicate_minutes(self) -> int:
        return 1 if self.quick else 2
