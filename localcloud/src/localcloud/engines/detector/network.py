"""The torchvision SSDlite network, its checkpoint format and image-to-tensor conversion."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.models.detection import ssdlite320_mobilenet_v3_large
from torchvision.models.detection.ssd import SSD

CHECKPOINT = "model.pt"
METADATA = "metadata.json"
WEIGHTS_ENV = "DETECTOR_WEIGHTS"


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(num_classes: int, image_size: int) -> SSD:
    """SSDlite with `num_classes` object classes plus background (index 0), for square inputs of image_size.

    Images reach the network already resized to image_size (see `network_input`), so the model's own transform
    is told the same size and only normalises.
    """
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes + 1)
    model.transform.min_size = (image_size,)
    model.transform.max_size = image_size
    model.transform.fixed_size = (image_size, image_size)
    return model


def network_input(image: Image.Image, image_size: int) -> np.ndarray:
    """Stretch (as SSD's own transform does) an RGB image to image_size x image_size; uint8 HxWx3."""
    return np.array(image.resize((image_size, image_size), Image.BILINEAR))  # writable, as torch wants


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 or [0, 1] float array to the CHW float tensor torchvision expects."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float()
    return tensor / 255.0 if pixels.dtype == np.uint8 else tensor


def resolve_pretrained(setting: str) -> Path | None:
    """Which local weights file to start from: "none", "auto" ($DETECTOR_WEIGHTS if it names a file) or a path.

    Nothing is ever downloaded: the machines this runs on have no route to weight hubs.
    """
    if setting == "none":
        return None
    if setting == "auto":
        env = os.environ.get(WEIGHTS_ENV, "")
        return Path(env) if env and Path(env).is_file() else None
    path = Path(setting)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    return path


def load_compatible(model: SSD, path: Path) -> tuple[int, int]:
    """Copy every tensor from `path` whose name and shape fit `model`; returns (copied, model's total).

    Accepts a plain state_dict (e.g. torchvision's COCO SSDlite checkpoint) or one of our model.pt files. The
    class-count-dependent head layers differ in shape from a checkpoint with other classes and stay random.
    """
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    source = loaded.get("state_dict", loaded)
    target = model.state_dict()
    fitting = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    if not fitting:
        raise ValueError(f"{path} holds no tensors that fit an SSDlite MobileNetV3 detector")
    model.load_state_dict(fitting, strict=False)
    return len(fitting), len(target)
