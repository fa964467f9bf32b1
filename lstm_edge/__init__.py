"""lstm-edge: a PyTorch LSTM from training to the edge, with proof of numerical parity on every runtime."""

__version__ = "0.1.0"

from lstm_edge.errors import LstmEdgeError, ParityError  # noqa: E402


def load_checkpoint(path, trust_pickle: bool = False):
    """(model, config) from an lstm-edge checkpoint; see lstm_edge.checkpoint."""
    from lstm_edge.checkpoint import load_checkpoint as _load

    return _load(path, trust_pickle=trust_pickle)


def load(bundle, provider: str = "cpu", variant: str = "fp32", threads: int | None = None, **options):
    """A runner for a bundle folder or a bare .onnx: run(x, state) -> (y, (h, c)), stream() for one step at a time.

    See lstm_edge.runtimes.open_runner for the arguments; raises LstmEdgeError (one line: problem — fix)."""
    from lstm_edge.runtimes import open_runner

    return open_runner(bundle, provider=provider, variant=variant, threads=threads, **options)


__all__ = ["LstmEdgeError", "ParityError", "__version__", "load", "load_checkpoint"]
