"""Data path: a source (canonical pickles, image folder or zip, download) -> cached uint8 arrays
-> stratified train/val split with the test set kept apart -> batched augmentation on tensors."""
from harness.data.images import Images, Splits

__all__ = ["Images", "Splits"]
