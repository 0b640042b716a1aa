"""The two CNNs trained from scratch: the study's baseline and a deeper net with batch norm."""
import torch
from torch import nn


class BaselineCNN(nn.Module):
    """The original study's model: three blocks of 3x3 conv + ReLU + 2x2 max-pool (32, 64, 128
    filters), a dense layer with dropout, and a linear output (logits)."""

    def __init__(self, num_classes: int = 10, dense: int = 256, dropout: float = 0.5):
        super().__init__()
        blocks = []
        channels = 3
        for width in (32, 64, 128):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, num_classes),
        )

    def forward(self, x):
        return self.head(self.features(x))


class Whitening(nn.Conv2d):
    """airbench's first layer: a 2x2 convolution whose filters whiten 2x2 patches. ``fit(images)``
    sets them to the eigenvectors of the patches' covariance, each scaled by 1/sqrt(eigenvalue),
    in +/- pairs (so the GELU after it loses nothing), on images normalised per channel (folded into
    the filters and bias, so the model still takes [0, 1] inputs). The filters stay fixed; the bias
    trains. Before ``fit`` the filters are random (and still fixed)."""

    def __init__(self, channels: int = 3, size: int = 2):
        super().__init__(channels, 2 * channels * size * size, size, padding=0, bias=True)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        channels, (height, width) = images.shape[1], self.kernel_size
        mean = images.mean((0, 2, 3))
        std = images.std((0, 2, 3))
        normalised = (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        patches = (normalised.unfold(2, height, 1).unfold(3, width, 1).transpose(1, 3)
                   .reshape(-1, channels * height * width).double())
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).flip(0).float()
        filters = torch.cat([filters, -filters]).view_as(self.weight) / std.view(1, -1, 1, 1)
        self.weight.copy_(filters)
        self.bias.copy_(-(filters * mean.view(1, -1, 1, 1)).sum((1, 2, 3)))


def fit_whitening(model, images) -> None:
    """``ModelSpec.init_from_data`` for models with a ``Whitening`` layer."""
    for module in model.modules():
        if isinstance(module, Whitening):
            module.fit(images)


class Conv(nn.Conv2d):
    """A 3x3 'same' convolution without bias whose first filters start as the identity (airbench:
    each block begins by passing its input through)."""

    def __init__(self, cin, cout):
        super().__init__(cin, cout, 3, padding=1, bias=False)

    def reset_parameters(self):
        super().reset_parameters()
        nn.init.dirac_(self.weight.data[: min(self.in_channels, self.out_channels)])


class BatchNorm(nn.BatchNorm2d):
    """airbench's batch norm: running statistics that follow the batches fast (momentum 0.4 in
    torch's terms), a tiny eps, and a fixed scale of 1 (only the shift trains)."""

    def __init__(self, channels, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


class ConvGroup(nn.Sequential):
    """airbench's block: conv, max-pool, BN, GELU, conv, BN, GELU. Pooling before the batch norm
    makes the norm and activation run on a quarter of the pixels."""

    def __init__(self, cin, cout):
        super().__init__(
            Conv(cin, cout), nn.MaxPool2d(2), BatchNorm(cout), nn.GELU(),
            Conv(cout, cout), BatchNorm(cout), nn.GELU(),
        )


class DeepCNN(nn.Module):
    """A deeper CNN after airbench94 (Keller Jordan): a 2x2 whitening stem without padding, three
    conv groups of widths 64/256/256, a final 3x3 max-pool and a bias-free linear head whose
    logits are scaled down by 1/9. The whitening filters come from the training data
    (``fit_whitening``, the spec's ``init_from_data``)."""

    def __init__(self, num_classes: int = 10, widths=(64, 256, 256), logit_scale: float = 1 / 9):
        super().__init__()
        self.whiten = Whitening(3, 2)
        layers = [nn.GELU()]
        channels = self.whiten.out_channels
        for width in widths:
            layers.append(ConvGroup(channels, width))
            channels = width
        self.features = nn.Sequential(*layers, nn.MaxPool2d(3), nn.Flatten())
        self.head = nn.Linear(channels, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x):
        return self.head(self.features(self.whiten(x))) * self.logit_scale
