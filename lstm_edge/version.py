"""lstm-edge's version, in a leaf module: what it writes into checkpoints, bundles and reports, readable by any
module without importing the package's own __init__ (which would make a loop with the modules it loads lazily)."""

__version__ = "0.1.0"
