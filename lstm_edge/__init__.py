"""lstm-edge: a PyTorch LSTM from training to the edge, with proof of numerical parity on every runtime."""

from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.version import __version__


def load_checkpoint(path, trust_pickle: bool = False):
    """(model, config) from an lstm-edge checkpoint; see lstm_edge.checkpoint.

    Raises LstmEdgeError (one line: problem — fix) for a file that is missing, not a checkpoint, or unsafe to load.
    """
    # torch, which checkpoint imports, deferred: `import lstm_edge` stays light
    from lstm_edge.checkpoint import load_checkpoint as load_file

    return load_file(path, trust_pickle=trust_pickle)


def load(
    bundle, provider: str = "cpu", variant: str = "fp32", threads: int | None = None, self_check: bool = True, **options
):
    """A runner for a bundle folder or a bare .onnx: run(x, state) -> (y, (h, c)), stream() for one step at a time.

    With self_check (the default) the runner first reproduces the bundle's golden cases on itself, or finds that pass
    in the user cache (lstm_edge.runtimes.self_check); runner.describe()["self_check"] says "passed", "cached",
    "skipped" (self_check=False) or "unavailable" (nothing to check against: a bare .onnx). See
    lstm_edge.runtimes.open_runner for the other arguments.

    Raises:
        ParityError: the runtime misses a golden case's bound here (one line naming the runtime, variant, error and
            bound); LstmEdgeError (one line: problem — fix) for everything open_runner refuses."""
    # numpy and the runtime modules deferred: `import lstm_edge` stays light
    from lstm_edge.runtimes import open_runner

    return open_runner(bundle, provider=provider, variant=variant, threads=threads, self_check=self_check, **options)


__all__ = ["LstmEdgeError", "ParityError", "__version__", "load", "load_checkpoint"]
