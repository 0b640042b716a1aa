"""Data path: a source (a dataset plugin's files, an image folder or zip) -> cached uint8 arrays
-> stratified train/val split with the test set kept apart -> batched augmentation on tensors."""
from harness.data.images import Images, Splits

__all__ = ["Images", "Splits"]
