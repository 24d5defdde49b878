"""The consistency report: the classes each value falls in, the counts, the table and the chart."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudstream import contract as c
from fraudstream.local.replay import percentile

EXACT, UNVERIFIABLE, UNEXPLAINED = "exact", "unverifiable", "unexplained"
CLASSES = (EXACT, UNVERIFIABLE, UNEXPLAINED)
# Every value a verdict logs: the aggregates and the model features built from them.
FEATURES = tuple(dict.fromkeys((c.AMOUNT, *c.AGGREGATE_COLUMNS, *c.ALL_FEATURES)))
EXAMPLES = 5  # named examples kept per problem and for unexplained values


@dataclass
class Report:
    source: str
    verdicts: int = 0  # verdict records read
    compared: int = 0
    features: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # feature -> class -> n
    problems: Counter = field(default_factory=Counter)  # named input problem -> n
    problem_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unexplained: list[dict[str, Any]] = field(default_factory=list)  # the first EXAMPLES
    score_differences: list[float] = field(default_factory=list)  # |logged - batch definition's|, sorted
    flips: Counter = field(default_factory=Counter)  # "FRAUD -> NOT FRAUD" -> n
    scored: bool = False

    def problem(self, name: str, example: str = "") -> None:
        self.problems[name] += 1
        if example and len(self.problem_examples[name]) < EXAMPLES:
            self.problem_examples[name].append(example)

    @property
    def unexplained_values(self) -> int:
        return sum(counts[UNEXPLAINED] for counts in self.features.values())

    @property
    def consistent(self) -> bool:
        """No unexplained value and no verdict that the batch definition's features would flip."""
        return not self.unexplained_values and not sum(self.flips.values())

    def as_dict(self) -> dict[str, Any]:
        diffs = self.score_differences
        return {
            "source": self.source, "verdicts": self.verdicts, "compared": self.compared,
            "features": {name: {k: counts[k] for k in CLASSES} for name, counts in self.features.items()},
            "unexplained_values": self.unexplained_values, "unexplained_examples": self.unexplained,
            "problems": dict(self.problems), "problem_examples": dict(self.problem_examples),
            "scores": None if not self.scored else {
                "compared": len(diffs), "p50": _percentile(diffs, 50), "p99": _percentile(diffs, 99),
                "max": diffs[-1] if diffs else None, "verdict_flips": dict(self.flips)},
        }


# --- Output -------------------------------------------------------------------------------------------


def table(report: Report) -> str:
    lines = [f"consistency of {report.source}: {report.verdicts:,} verdicts read, {report.compared:,} compared "
             "with the batch definition"]
    if report.features:
        lines.append(f"{'feature':<22} {'exact':>8} {'unverifiable':>13} {'unexplained':>12} {'exact %':>8}")
        for name in FEATURES:
            counts = report.features.get(name)
            if counts:
                total = sum(counts.values())
                lines.append(f"{name:<22} {counts[EXACT]:>8,} {counts[UNVERIFIABLE]:>13,} "
                             f"{counts[UNEXPLAINED]:>12,} {100 * counts[EXACT] / total:>7.1f}%")
    if report.scored:
        diffs = report.score_differences
        flips = ", ".join(f"{n} {what}" for what, n in sorted(report.flips.items())) or "none"
        if diffs:
            lines.append(f"scores (logged vs the batch definition's vector): |difference| p50 {_percentile(diffs, 50):.6f}, "
                         f"p99 {_percentile(diffs, 99):.6f}, max {diffs[-1]:.6f}; verdict flips: {flips}")
    else:
        lines.append("scores not compared (no model given)")
    for example in report.unexplained:
        lines.append(f"unexplained: {example['transaction']} card {example['card']} {example['feature']} online "
                     f"{example['online']!r}, batch definition {example['batch_definition']!r}")
    for name, count in sorted(report.problems.items()):
        examples = report.problem_examples.get(name)
        lines.append(f"input: {count:,} {name}" + (f" (e.g. {'; '.join(examples[:3])})" if examples else ""))
    return "\n".join(lines)


def write_png(report: Report, path: Path) -> None:
    """Per feature: the share of values unverifiable and unexplained (stacked bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fraudstream.files import atomic_path

    names = [name for name in FEATURES if report.features.get(name)]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.5))
    left = [0.0] * len(names)
    for kind, colour in ((UNVERIFIABLE, "tab:gray"), (UNEXPLAINED, "tab:red")):
        shares = [100 * report.features[n][kind] / sum(report.features[n].values()) for n in names]
        ax.barh(names, shares, left=left, color=colour, label=kind)
        left = [a + b for a, b in zip(left, shares)]
    ax.set(xlabel="% of values differing from the batch definition", xlim=(0, 100),
           title=f"Online vs batch features, {report.compared:,} transactions")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    return percentile(list(ordered), q) if ordered else None
