"""What `score` is asked for (ScoreConfig) and what it answers (ScoreResult), with the limits both engines share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lstm_edge.errors import LstmEdgeError

ENGINES = ("local", "ray")
OUTPUTS = ("y", "hn", "cn")
RAY_INSTALL = "pip install 'lstm-edge[ray]'"
ROW_GROUP_BYTES = 8 << 20  # results buffered per Parquet row group (local engine) …
ROW_GROUP_ROWS = 16_384  # … whichever limit comes first
# Ray: rows per task (each task writes one Parquet file). A task's actor holds its queue until the task ends, so at
# the end of a run one actor can idle for up to a task while the other finishes: 16 tasks over 100,000 rows left an
# actor idle 1.7 s at the end (of a 21 s run), 64 tasks 0.04 s (measured, 2 actors). 4,096 rows of the adding model
# at T=100 is ~0.8 s of one actor.
TASK_ROWS = 4096


@dataclass
class ScoreConfig:
    """Everything `score` is asked for, in one place."""

    provider: str = "cpu"
    variant: str = "fp32"
    batch_size: int = 256  # sequences per runner call; memory per batch ≈ batch_size × T × F × 4 bytes in and out
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance; else join this cluster ("auto", "ray://…")
    workers: int | None = None  # ray: actors in the pool (None: this machine's cores, or the cluster's CPUs - 1)
    outputs: tuple[str, ...] = ("y",)
    threads: int | None = None  # runner threads (None: local uses all cores, each Ray actor uses 1)
    verify_hash: bool = True
    self_check: bool = True  # each runner reproduces the golden cases before scoring (runtimes.self_check)
    progress: bool = True
    strict_range: bool = False  # a variant that clips x to its recorded input range (int8 C): refuse, exit 1

    def check(self) -> None:
        """Refuse a config no engine can run.

        Raises:
            LstmEdgeError: an unknown engine or output, a batch size, worker or thread count below 1, or
                --ray-address without the Ray engine.
        """
        if self.engine not in ENGINES:
            raise LstmEdgeError(f"unknown engine {self.engine!r}", f"choose one of {', '.join(ENGINES)}")
        if self.batch_size < 1:
            raise LstmEdgeError(f"--batch-size {self.batch_size}", "use a batch of at least 1 sequence")
        if self.workers is not None and self.workers < 1:
            raise LstmEdgeError(f"--workers {self.workers}", "use at least 1 worker")
        if self.threads is not None and self.threads < 1:
            raise LstmEdgeError(f"--threads {self.threads}", "use a positive thread count")
        bad = [o for o in self.outputs if o not in OUTPUTS]
        if bad or not self.outputs:
            raise LstmEdgeError(f"--outputs {','.join(self.outputs)}", f"choose from {','.join(OUTPUTS)}")
        if self.ray_address and self.engine != "ray":
            raise LstmEdgeError("--ray-address needs --engine ray", "add --engine ray, or drop --ray-address")


@dataclass
class ScoreResult:
    """What a score run did: where it wrote, how many rows, in how long, on which engine, and its runner's describe()."""

    output: Path
    rows: int
    seconds: float
    engine: str
    runner: dict = field(default_factory=dict)
    clipped: int = 0  # input values the variant clipped to its recorded range (local engine; the int8 C)
    clip_problem: str = ""  # the one line naming them, the range and its source ("" when none)

    @property
    def rows_per_s(self) -> float:
        """Throughput of the run in sequences per second (inf for a run that took no measurable time)."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")
