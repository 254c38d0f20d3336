"""The detector engine: hand-checked metrics, box mapping, augmentation geometry and a tiny real training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from localcloud.engines.detector import (
    Detection,
    Sample,
    TrainConfig,
    evaluate,
    evaluate_predictions,
    load,
    match_detections,
    train,
)
from localcloud.engines.detector.augment import augment, horizontal_flip
from localcloud.engines.detector.evaluation import best_f1
from localcloud.engines.detector.inference import Detector
from localcloud.engines.detector.samples import rescale_boxes

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def make_samples(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Sample]:
    """Coloured rectangles (class = colour) on dark noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    samples = []
    for index in range(count):
        pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        boxes, labels = [], []
        for _ in range(rng.integers(1, 3)):
            w, h = rng.integers(width // 5, width // 2), rng.integers(height // 5, height // 2)
            x0, y0 = rng.integers(0, width - w), rng.integers(0, height - h)
            label = int(rng.integers(0, len(COLOURS)))
            pixels[y0 : y0 + h, x0 : x0 + w] = COLOURS[label]
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(label)
        path = folder / f"{index}.png"
        Image.fromarray(pixels).save(path)
        samples.append(Sample(path, np.array(boxes), np.array(labels)))
    return samples


@pytest.fixture(autouse=True)
def no_weights_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DETECTOR_WEIGHTS", raising=False)


# --- matching and metrics on hand-made boxes ------------------------------------------------------------------

CAT_A, CAT_B, DOG_C = [0, 0, 10, 10], [20, 0, 30, 10], [40, 40, 60, 60]


def test_match_is_greedy_by_confidence_and_one_to_one() -> None:
    boxes = np.array([CAT_A, [1, 0, 11, 10], CAT_B, [50, 50, 60, 60]], dtype=float)
    # The 0.8 box overlaps A (IoU 0.82) but A went to the 0.9 box: a duplicate is a false positive.
    is_tp = match_detections(boxes, [0.9, 0.8, 0.3, 0.5], np.array([CAT_A, CAT_B]), iou_threshold=0.5)
    assert is_tp.tolist() == [True, False, True, False]


def test_match_respects_the_iou_threshold() -> None:
    shifted = np.array([[5, 0, 15, 10]], dtype=float)  # IoU with CAT_A = 50 / 150
    assert match_detections(shifted, [0.9], np.array([CAT_A]), 0.5).tolist() == [False]
    assert match_detections(shifted, [0.9], np.array([CAT_A]), 0.3).tolist() == [True]


def test_best_f1_sweeps_thresholds() -> None:
    # Cuts: 0.9 -> P 1, R 1/3; 0.8 -> 1/2, 1/3; 0.5 -> 1/3, 1/3; 0.3 -> 2/4, 2/3 (F1 4/7, the best).
    score = best_f1(np.array([0.5, 0.9, 0.3, 0.8]), np.array([False, True, True, False]), num_ground_truth=3)
    assert score.threshold == 0.3
    assert score.precision == pytest.approx(0.5)
    assert score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(4 / 7)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 2, 1)


def test_best_f1_without_any_hit_accepts_nothing() -> None:
    score = best_f1(np.array([0.7]), np.array([False]), num_ground_truth=2)
    assert (score.threshold, score.precision, score.recall, score.f1, score.false_negatives) == (1.0, 0, 0, 0, 2)


def test_evaluate_predictions_hand_computed() -> None:
    image1 = Sample(Path("1.png"), np.array([CAT_A, CAT_B, DOG_C]), np.array([0, 0, 1]))
    image2 = Sample(Path("2.png"), np.array([CAT_A]), np.array([0]))  # missed entirely
    predictions = [
        [
            Detection(0, 0.9, tuple(CAT_A)),
            Detection(0, 0.8, (1, 0, 11, 10)),
            Detection(0, 0.5, (50, 50, 60, 60)),
            Detection(0, 0.3, tuple(CAT_B)),
            Detection(1, 0.7, tuple(CAT_A)),  # dog where the cat is
            Detection(1, 0.6, tuple(DOG_C)),
        ],
        [],
    ]
    summary = evaluate_predictions(predictions, [image1, image2], {0: "cat", 1: "dog"})
    dog, cat = summary["LabelEvaluationResults"]  # sorted by F1, best first
    assert cat["Label"] == "cat" and dog["Label"] == "dog"
    assert cat["Metrics"] == pytest.approx({"F1Score": 4 / 7, "Precision": 0.5, "Recall": 2 / 3, "Threshold": 0.3})
    assert (cat["NumberOfTestingImages"], cat["NumberOfTestingBoxes"]) == (2, 3)
    assert dog["Metrics"] == pytest.approx({"F1Score": 2 / 3, "Precision": 0.5, "Recall": 1.0, "Threshold": 0.6})
    # Micro over both labels at their own thresholds: TP 2+1, FP 2+1, FN 1+0.
    aggregate = summary["AggregatedEvaluationResults"]
    assert aggregate == pytest.approx({"F1Score": 0.6, "Precision": 0.5, "Recall": 0.75})
    assert summary["EvaluationResult"]["F1Score"] == pytest.approx(0.6)
    assert summary["EvaluationDetails"]["Labels"] == ["cat", "dog"]
    assert summary["EvaluationDetails"]["NumberOfTestingImages"] == 2


# --- geometry -------------------------------------------------------------------------------------------------


def test_rescale_boxes_maps_network_pixels_to_original() -> None:
    boxes = rescale_boxes(np.array([[32, 32, 160, 160], [300, 0, 340, 10]]), (320, 320), (640, 480))
    assert boxes.tolist() == [[64, 48, 320, 240], [600, 0, 640, 15]]  # the second is clipped to the image


class FixedOutput(torch.nn.Module):
    """Stands in for SSD: records its input and answers with boxes in network (320 x 320) pixels."""

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.seen = images
        return [
            {
                "boxes": torch.tensor([[0.0, 0.0, 160.0, 160.0], [160.0, 80.0, 320.0, 320.0], [10, 10, 20, 20]]),
                "scores": torch.tensor([0.5, 0.9, 0.05]),
                "labels": torch.tensor([1, 3, 2]),
            }
        ]


def test_predict_returns_boxes_in_original_pixels() -> None:
    model = FixedOutput()
    detector = Detector(model, {"image_size": 320, "num_classes": 3}, torch.device("cpu"))
    detections = detector.predict(np.zeros((300, 800, 3), dtype=np.uint8), min_confidence=0.1)
    assert model.seen[0].shape == (3, 320, 320)
    assert detections == [
        Detection(label=2, confidence=pytest.approx(0.9), box=(400.0, 75.0, 800.0, 300.0)),
        Detection(label=0, confidence=pytest.approx(0.5), box=(0.0, 0.0, 400.0, 150.0)),
    ]
    assert len(detector.predict(Image.new("L", (800, 300)), max_results=1)) == 1


# --- augmentation keeps boxes on their objects ----------------------------------------------------------------


def test_horizontal_flip_moves_boxes_with_pixels() -> None:
    image = np.zeros((10, 20, 3), dtype=np.uint8)
    image[2:5, 1:4] = 255
    flipped, boxes = horizontal_flip(image, np.array([[1, 2, 4, 5]], dtype=np.float32))
    assert boxes.tolist() == [[16, 2, 19, 5]]
    assert flipped[2:5, 16:19].min() == 255 and flipped.sum() == image.sum()


@pytest.mark.parametrize("seed", range(12))
def test_augment_keeps_the_box_on_the_object(seed: int) -> None:
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    image[30:70, 50:110] = 255
    pixels, boxes, labels = augment(
        image, np.array([[50, 30, 110, 70]], np.float32), np.array([1]), np.random.default_rng(seed)
    )
    assert pixels.shape == (128, 128, 3) and pixels.dtype == np.float32 and labels.tolist() == [1]
    ys, xs = np.nonzero(pixels.mean(axis=2) > 0.5)
    assert boxes[0] == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=2)


# --- a tiny real training run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rectangles(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    return make_samples(tmp_path_factory.mktemp("rectangles"), 8, (128, 128), seed=0)


TINY = TrainConfig(image_size=128, epochs=5, batch_size=4, seed=0, max_seconds=30, threads=1, pretrained="none")


def test_training_lowers_loss_saves_and_reloads(rectangles: list[Sample], tmp_path: Path) -> None:
    reports: list[dict] = []
    result = train(rectangles, 3, TINY, tmp_path / "model", progress=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4, 5]
    assert min(result.losses[1:]) < result.losses[0]
    assert result.best_loss == min(result.losses) and result.losses[result.best_epoch - 1] == result.best_loss
    assert result.pretrained.startswith("none: trained from scratch")
    assert result.model_path == tmp_path / "model" / "model.pt" and result.model_path.is_file()
    assert json.loads((tmp_path / "model" / "metadata.json").read_text())["num_classes"] == 3

    detector = load(tmp_path / "model")
    original = Image.new("RGB", (200, 150), (30, 30, 30))
    detections = detector.predict(original, max_results=20)
    assert 0 < len(detections) <= 20
    assert [d.confidence for d in detections] == sorted((d.confidence for d in detections), reverse=True)
    for d in detections:
        assert 0 <= d.label < 3 and 0 <= d.confidence <= 1
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 <= x1 <= 200 and 0 <= y0 <= y1 <= 150
    summary = evaluate(detector, rectangles[:2], {0: "red", 1: "green", 2: "blue"})
    assert 0 <= summary["EvaluationResult"]["F1Score"] <= 1


def test_training_is_deterministic_for_a_seed(rectangles: list[Sample], tmp_path: Path) -> None:
    config = TrainConfig(image_size=96, epochs=2, batch_size=4, seed=3, threads=1, pretrained="none")
    first = train(rectangles[:4], 3, config, tmp_path / "a")
    second = train(rectangles[:4], 3, config, tmp_path / "b")
    assert first.losses == second.losses


def test_time_budget_stops_and_still_saves(rectangles: list[Sample], tmp_path: Path) -> None:
    config = TrainConfig(image_size=96, epochs=50, batch_size=4, threads=1, max_seconds=0, pretrained="none")
    result = train(rectangles[:4], 3, config, tmp_path / "m")
    assert result.stopped_early and result.epochs_completed == 0 and result.model_path.is_file()


def test_pretrained_weights_come_from_local_files_only(
    rectangles: list[Sample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(image_size=96, epochs=1, batch_size=4, threads=1, pretrained="none")
    start = train(rectangles[:4], 3, config, tmp_path / "start").model_path
    # "auto" picks up $DETECTOR_WEIGHTS; a checkpoint for another class count shares all but the class head.
    monkeypatch.setenv("DETECTOR_WEIGHTS", str(start))
    resumed = train(rectangles[:4], 4, TrainConfig(**{**vars(config), "pretrained": "auto"}), tmp_path / "next")
    copied, total = (int(n) for n in resumed.pretrained.split(": ")[1].split(" ")[0].split("/"))
    assert resumed.pretrained.startswith(str(start)) and 0 < copied < total
    with pytest.raises(FileNotFoundError):
        train(
            rectangles[:4], 3, TrainConfig(**{**vars(config), "pretrained": str(tmp_path / "nope.pt")}), tmp_path / "x"
        )


def test_training_rejects_labels_beyond_num_classes(rectangles: list[Sample], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labels outside 0..0"):
        train(rectangles, 1, TINY, tmp_path / "m")
