"""Small models and splits that several test modules train on."""
import torch
from torch import nn

from conftest import pattern_images
from harness.data import Splits


def tiny_splits(n=40, classes=3, size=8):
    x, y = pattern_images(n, classes, size=size, seed=5)
    vx, vy = pattern_images(10, classes, size=size, seed=6)
    tx, ty = pattern_images(12, classes, size=size, seed=7)
    return Splits([str(c) for c in range(classes)], x, y, vx, vy, tx, ty)


def scripted_val_acc(monkeypatch, values):
    """Make validation report ``values`` epoch by epoch, whatever the weights are."""
    import harness.train

    sequence = iter(values)
    monkeypatch.setattr(harness.train, "loss_and_accuracy", lambda logits, labels: (1.0, next(sequence)))


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3),
    )


class Net(nn.Module):
    """A base of two blocks (conv + batch norm) and a head with dropout."""

    def __init__(self, classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(8, classes))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def net(seed=0):
    torch.manual_seed(seed)
    return Net()


def default_callbacks(config=None):
    """The installed plugins' default callbacks (early stopping, ReduceLROnPlateau), as a run makes
    them: a Trainer given none has none."""
    from harness import plugin_registry
    from harness.callbacks import CallbackList

    return CallbackList.make(plugin_registry.installed(), config or {})


def job_and_context(spec, config, folder, request, images=None):
    """The job and context ``model_run.run_model`` takes, as an executor hands them over: the
    installed plugins' default callbacks and evaluators."""
    from harness import plugin_registry
    from harness.accel import settled
    from harness.jobs import Job, JobContext
    from harness.plugin_registry import choose_evaluators

    registry = plugin_registry.installed()
    job = Job(spec, config, spec.name, folder, accel=settled(request.accel, spec))
    context = JobContext(request=request, registry=registry,
                         evaluators=choose_evaluators(registry, request.evaluators, request.eval_options),
                         images_for=lambda size: images, dataset=None, options={}, finished=lambda outcome: None)
    return job, context
