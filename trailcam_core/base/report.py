"""What a batch job hands back: what it made, what it skipped and why."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchReport:
    """Result of a batch stage. Bad inputs go to ``skipped`` with a reason; a batch never aborts for one."""

    stage: str
    processed: int = 0            # items newly done in this run
    up_to_date: int = 0           # items already done by an earlier run (idempotent reruns)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (item, reason)
    outputs: dict[str, Any] = field(default_factory=dict)          # named output paths / values
    details: dict[str, Any] = field(default_factory=dict)          # figures a face may show (not in summary)

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((str(item), str(reason)))

    def summary(self) -> str:
        """One line for the end of a CLI run."""
        parts = [f"{self.stage}: {self.processed} done"]
        if self.up_to_date:
            parts.append(f"{self.up_to_date} up to date")
        parts.append(f"{len(self.skipped)} skipped")
        line = ", ".join(parts)
        if self.outputs:
            line += " -> " + ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        return line

    def to_dict(self) -> dict:
        return {"stage": self.stage, "processed": self.processed, "up_to_date": self.up_to_date,
                "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
                "outputs": {k: str(v) for k, v in self.outputs.items()}}
