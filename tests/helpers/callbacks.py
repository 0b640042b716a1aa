"""A test's own callback: a function of each epoch's history row, after the trainer's other callbacks."""
from harness import Callback


class EpochFunction(Callback):
    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, epoch, logs):
        self.function(logs)


def after_each_epoch(trainer, function):
    """Call ``function(row)`` after every epoch of ``trainer`` (as a ``--callback`` plugin's would be)."""
    trainer.callbacks.plugins.entries.append(("after_each_epoch", "test", EpochFunction(function)))
    return trainer
