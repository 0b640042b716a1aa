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


def conv_bn(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()
    )


class DeepCNN(nn.Module):
    """A deeper CNN in the style of airbench: a stem, then three stages of two conv + batch-norm +
    GELU layers with a max-pool each, global max-pool and a linear head. Width is the lever that
    trades speed for accuracy on a CPU."""

    def __init__(self, num_classes: int = 10, widths=(64, 256, 256), stem: int = 32):
        super().__init__()
        layers = [conv_bn(3, stem)]
        channels = stem
        for width in widths:
            layers += [conv_bn(channels, width), nn.MaxPool2d(2), conv_bn(width, width)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
