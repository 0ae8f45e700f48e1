"""Visual encoders for [C, H, W] observations (`vis_encode_type`), layer tables of spec 8.1.

| type            | min side | layers                                                                      |
|-----------------|----------|-----------------------------------------------------------------------------|
| simple          | 20       | conv 16 8x8/4, LReLU, conv 32 4x4/2, LReLU, flatten, dense, LReLU           |
| nature_cnn      | 36       | conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1 (LReLU after each), dense, LReLU |
| resnet          | 15       | stacks of 16, 32, 32 channels: conv 3x3/1 pad 1, max-pool 3x3/2, two        |
|                 |          | residual blocks (Swish, conv, Swish, conv, + skip); Swish, dense, ReLU      |
| match3          | 5        | conv 35 3x3/1, LReLU, conv 144 3x3/1, LReLU, flatten, dense, LReLU          |
| fully_connected | 1        | flatten, dense, LReLU                                                       |

Every dense layer maps to `hidden_units` with He-normal weights (linear gain) times 1.41 and a zero
bias; convolutions keep torch's default initialisation. A side below the minimum is refused with a
ConfigError naming the observation. Output size: `hidden_units`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fledge.errors import ConfigError

VISUAL_ENCODERS = ("simple", "nature_cnn", "resnet", "match3", "fully_connected")
MIN_RESOLUTION = {"simple": 20, "nature_cnn": 36, "resnet": 15, "match3": 5, "fully_connected": 1}
DENSE_GAIN = 1.41


def conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output side of a convolution or pooling: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def dense(n_in: int, n_out: int, gain: float = DENSE_GAIN) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(n_in))
        layer.bias.zero_()
    return layer


def check_resolution(encoder: str, shape: tuple[int, ...], *, index: int, name: str) -> None:
    """Refuse a visual observation smaller than `encoder`'s minimum side (spec 8.1's message, with the observation)."""
    if encoder not in MIN_RESOLUTION:
        raise ConfigError(
            f"network_settings.vis_encode_type: unknown encoder '{encoder}' (use one of {', '.join(VISUAL_ENCODERS)})."
        )
    _, h, w = shape
    least = MIN_RESOLUTION[encoder]
    if h < least or w < least:
        raise ConfigError(
            f"Observation {index} ('{name}') of shape {tuple(shape)}: visual observation resolution ({w}x{h}) is too "
            f"small for the provided EncoderType ({encoder}). The min dimension is {least}; use a larger observation "
            "or another network_settings.vis_encode_type."
        )


class ConvEncoder(nn.Module):
    """Convolutions (each followed by LeakyReLU), flatten, dense to `out_size`, LeakyReLU: simple, nature_cnn, match3."""

    def __init__(self, shape: tuple[int, int, int], out_size: int, convs: tuple[tuple[int, int, int], ...]) -> None:
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for filters, kernel, stride in convs:
            layers += [nn.Conv2d(c, filters, kernel, stride), nn.LeakyReLU()]
            c, h, w = filters, conv_out(h, kernel, stride), conv_out(w, kernel, stride)
        self.conv = nn.Sequential(*layers)
        self.flat_size = c * h * w
        self.dense = dense(self.flat_size, out_size)
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(self.dense(self.conv(x).flatten(1)))


class FullyConnectedEncoder(nn.Module):
    """Flatten, dense to `out_size`, LeakyReLU."""

    def __init__(self, shape: tuple[int, int, int], out_size: int) -> None:
        super().__init__()
        self.flat_size = shape[0] * shape[1] * shape[2]
        self.dense = dense(self.flat_size, out_size)
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(self.dense(x.flatten(1)))


class ResidualBlock(nn.Module):
    """x + conv(swish(conv(swish(x)))), 3x3 convolutions with padding 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        silu = nn.functional.silu
        return x + self.conv2(silu(self.conv1(silu(x))))


class ResNetEncoder(nn.Module):
    """Three stacks (16, 32, 32 channels) of conv 3x3, max-pool 3x3/2 and two residual blocks; Swish, dense, ReLU."""

    CHANNELS = (16, 32, 32)

    def __init__(self, shape: tuple[int, int, int], out_size: int) -> None:
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for channels in self.CHANNELS:
            layers += [
                nn.Conv2d(c, channels, 3, 1, padding=1),
                nn.MaxPool2d(3, 2),
                ResidualBlock(channels),
                ResidualBlock(channels),
            ]
            c, h, w = channels, conv_out(h, 3, 2), conv_out(w, 3, 2)
        self.stacks = nn.Sequential(*layers)
        self.flat_size = c * h * w
        self.dense = dense(self.flat_size, out_size)
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(self.stacks(x)).flatten(1)
        return torch.relu(self.dense(h))


_CONVS = {
    "simple": ((16, 8, 4), (32, 4, 2)),
    "nature_cnn": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "match3": ((35, 3, 1), (144, 3, 1)),
}


def visual_encoder(encoder: str, shape: tuple[int, ...], out_size: int, *, index: int = 0, name: str = "") -> nn.Module:
    """The `encoder` (a vis_encode_type) for a [C, H, W] observation, after the minimum-resolution check."""
    check_resolution(encoder, shape, index=index, name=name)
    c, h, w = (int(d) for d in shape)
    if encoder == "resnet":
        return ResNetEncoder((c, h, w), out_size)
    if encoder == "fully_connected":
        return FullyConnectedEncoder((c, h, w), out_size)
    return ConvEncoder((c, h, w), out_size, _CONVS[encoder])
