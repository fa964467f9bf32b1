"""The model's configuration: sizes, head, task and normalization. Torch-free, so runtimes can read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    input_size: int
    hidden_size: int = 64
    num_layers: int = 2
    output_size: int = 1
    head: Literal["last", "sequence"] = "last"
    dropout: float = 0.0
    task: str = "custom"
    kind: Literal["regression", "classification"] = "regression"
    # Normalization is part of the model: raw inputs in, outputs in the task's own units.
    x_mean: list[float] = field(default_factory=list)
    x_std: list[float] = field(default_factory=list)
    y_mean: list[float] = field(default_factory=list)
    y_std: list[float] = field(default_factory=list)
    # Per-feature range of the training inputs (empty: unknown). int8 quantization scales inputs by range.
    x_min: list[float] = field(default_factory=list)
    x_max: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.x_mean:
            self.x_mean = [0.0] * self.input_size
        if not self.x_std:
            self.x_std = [1.0] * self.input_size
        n_y = self.output_size if self.kind == "regression" else 0
        if not self.y_mean and n_y:
            self.y_mean = [0.0] * n_y
        if not self.y_std and n_y:
            self.y_std = [1.0] * n_y
        if self.head not in ("last", "sequence"):
            raise ValueError(f"head must be 'last' or 'sequence', not {self.head!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
