"""The intake: a user's model file → named tensors (and their forward, when the file has one) → a ModelSpec.

Two rooms: `read` opens files (and says what each format can execute); `recognize` reads structure from weight
names and shapes only and never touches the disk.
"""

from lstm_edge.intake.read import ModelFile, read_model
from lstm_edge.intake.recognize import Recognized, recognize

__all__ = ["ModelFile", "Recognized", "read_model", "recognize"]
