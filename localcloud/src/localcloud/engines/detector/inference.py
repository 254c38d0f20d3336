"""Load a trained detector and predict boxes in the original image's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from localcloud.engines.detector.network import CHECKPOINT, build_model, device, network_input, to_tensor
from localcloud.engines.detector.samples import Detection, rescale_boxes, to_rgb


class Detector:
    """A trained network with its metadata (class count, input size, training config); made by `load`."""

    def __init__(self, model: torch.nn.Module, metadata: dict, on: torch.device) -> None:
        self.model = model.eval()
        self.metadata = metadata
        self.image_size: int = metadata["image_size"]
        self.num_classes: int = metadata["num_classes"]
        self._device = on

    def predict(
        self, image: Image.Image | np.ndarray, min_confidence: float = 0.0, max_results: int | None = None
    ) -> list[Detection]:
        """Detections, most confident first. The network itself drops scores under 0.001 and keeps 300 at most."""
        rgb = to_rgb(image)
        size = (self.image_size, self.image_size)
        with torch.inference_mode():
            output = self.model([to_tensor(network_input(rgb, self.image_size)).to(self._device)])[0]
        scores = output["scores"].cpu().numpy()
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] >= min_confidence][:max_results]
        boxes = rescale_boxes(output["boxes"].cpu().numpy()[order], size, rgb.size)
        labels = output["labels"].cpu().numpy()[order] - 1  # undo the background shift
        return [
            Detection(label=int(label), confidence=float(scores[i]), box=tuple(float(v) for v in box))
            for i, label, box in zip(order, labels, boxes, strict=True)
        ]


def load(model_dir: Path) -> Detector:
    on = device()
    checkpoint = torch.load(Path(model_dir) / CHECKPOINT, map_location=on, weights_only=True)
    metadata = checkpoint["metadata"]
    model = build_model(metadata["num_classes"], metadata["image_size"])
    model.load_state_dict(checkpoint["state_dict"])
    return Detector(model.to(on), metadata, on)
