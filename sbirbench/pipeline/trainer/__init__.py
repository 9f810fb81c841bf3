"""The training step of the pipeline (see :mod:`.trainer`)."""

from .signals import Interrupted, TrainingStopped
from .trainer import Trainer, TrainerOptions

__all__ = ["Interrupted", "Trainer", "TrainerOptions", "TrainingStopped"]
