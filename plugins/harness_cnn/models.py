"""The two CNNs trained from scratch: the study's baseline and a deeper net with batch norm."""
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


class ConvGroup(nn.Sequential):
    """airbench's block: conv, max-pool, BN, GELU, conv, BN, GELU. Pooling before the batch norm
    makes the norm and activation run on a quarter of the pixels."""

    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
        )


class DeepCNN(nn.Module):
    """A deeper CNN after airbench94 (Keller Jordan): a 2x2 stem convolution without padding, three
    conv groups of widths 64/256/256, a final 3x3 max-pool and a bias-free linear head whose
    logits are scaled down by 1/9. airbench's stem is a fixed whitening filter computed from the
    data; here it is learnt, so the model needs nothing but its constructor."""

    def __init__(self, num_classes: int = 10, widths=(64, 256, 256), stem: int = 24, logit_scale: float = 1 / 9):
        super().__init__()
        layers = [nn.Conv2d(3, stem, 2, padding=0), nn.GELU()]
        channels = stem
        for width in widths:
            layers.append(ConvGroup(channels, width))
            channels = width
        self.features = nn.Sequential(*layers, nn.MaxPool2d(3), nn.Flatten())
        self.head = nn.Linear(channels, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x):
        return self.head(self.features(x)) * self.logit_scale
