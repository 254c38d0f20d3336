"""The Custom Labels webcam page: Airflow registration, auth, its API against a localcloud that trains a tiny model,
and headless Chromium fed a fake camera (a .y4m of a training-style image) drawing the model's boxes."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from custom_labels_webcam import webcam_app
from fastapi.testclient import TestClient
from PIL import Image

from localcloud.process import free_port
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.conftest import point_aws_default, running_localcloud
from tests.offline import TRAINING_BUDGET, detection_dataset, rectangle_image

LABELS = {"Red", "Blue"}  # the classes of tests.offline.detection_dataset


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 120, 120)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------------
# Airflow side: discovery, mounting, auth
# ---------------------------------------------------------------------------------------------------------------------
def test_airflow_discovers_the_plugin_app_and_nav_link() -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse
    from fastapi import FastAPI

    errors = plugins_manager.get_import_errors()
    assert not [path for path in errors if "custom_labels_webcam" in path], errors
    infos = [i for i in plugins_manager.get_plugin_info() if i["name"] == "custom_labels_webcam"]
    assert len(infos) == 1  # registered once: nothing else in the package holds the plugin class
    assert str(infos[0]["source"]) == "$PLUGINS_FOLDER/custom_labels_webcam/webcam_plugin.py"

    apps = [a for a in plugins_manager.get_fastapi_plugins()[0] if a["url_prefix"] == "/webcam"]
    assert len(apps) == 1 and apps[0]["name"] == "Custom Labels webcam"
    assert infos[0]["external_views"] == [
        {
            "name": "Custom Labels webcam",
            "href": "/webcam/",
            "url_route": "custom-labels-webcam",
            "destination": "nav",
            "category": "browse",
        }
    ]
    # What the API server's /api/v2/plugins returns (and the UI reads) must accept our keys.
    response = PluginResponse.model_validate(infos[0])
    assert response.external_views[0].url_route == "custom-labels-webcam"
    assert response.fastapi_apps[0].url_prefix == "/webcam"

    # Mounted the way the API server mounts it: the page's script and API calls stay under the prefix.
    root = FastAPI()
    init_plugins(root)
    page = TestClient(root).get("/webcam/")
    assert page.status_code == 200
    assert '<meta name="webcam-base" content="/webcam/">' in page.text
    assert '<script src="/webcam/static/webcam.js"></script>' in page.text
    assert "https://" not in page.text  # no CDN: the machines have no internet
    script = TestClient(root).get("/webcam/static/webcam.js")
    assert script.status_code == 200 and "window.webcamState" in script.text


def test_the_plugin_module_stays_light() -> None:
    import subprocess
    import sys

    from tests import REPO

    code = (
        "import sys; import custom_labels_webcam.webcam_app; "
        "print(sorted(m for m in ('torch', 'boto3', 'botocore', 'airflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "plugins")}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def airflow_tokens(monkeypatch) -> dict[str, str]:
    """JWTs of Airflow's SimpleAuthManager (the default) for an operator and a viewer."""
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", uuid.uuid4().hex * 2)  # long enough for HS512
    from airflow import settings
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    # Token checks look up revocations: that table is all of the metadata DB this needs (no full migration).
    RevokedToken.__table__.create(settings.engine, checkfirst=True)
    manager = init_auth_manager()
    return {role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role)) for role in ("op", "viewer")}


def test_the_api_needs_an_airflow_login_and_read_access_to_the_connection(airflow_tokens, monkeypatch) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    # An endpoint where nothing listens: an authorized call gets as far as AWS and fails there, quickly.
    config = {"retries": {"max_attempts": 1}, "connect_timeout": 1}
    extra = {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1", "config_kwargs": config}
    conn = {"conn_type": "aws", "login": "k", "password": "s", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    client = TestClient(webcam_app.create_app())
    assert client.get("/").status_code == 200  # the page shell itself holds nothing
    anonymous = client.get("/api/versions")
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Not authenticated"
    assert client.post("/api/detect?ProjectVersionArn=x", content=_png()).status_code == 401
    bogus = client.get("/api/versions", headers={"Authorization": "Bearer not-a-jwt"})
    assert bogus.status_code == 403

    viewer = client.get("/api/versions", headers={"Authorization": f"Bearer {airflow_tokens['viewer']}"})
    assert viewer.status_code == 403 and "aws_default" in viewer.json()["detail"]["message"]
    # The UI's session cookie is what the page sends; SimpleAuthManager lets operators read connections.
    client.cookies.set(COOKIE_NAME_JWT_TOKEN, airflow_tokens["op"])
    operator = client.get("/api/versions")
    assert operator.status_code == 503, operator.json()
    assert operator.json()["detail"]["code"] == "EndpointConnectionError"


# ---------------------------------------------------------------------------------------------------------------------
# The API against a localcloud with a tiny trained model
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    pytest.importorskip("torch")
    yield from running_localcloud(tmp_path_factory.mktemp("webcam-cloud") / "data", TRAINING_BUDGET)


@pytest.fixture(scope="module")
def trained(cloud) -> dict[str, str]:
    """A project with one TRAINING_COMPLETED version (seconds of training on a rectangles dataset)."""
    s3, rek = cloud.client("s3"), cloud.client("rekognition")
    bucket = f"webcam-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    project = rek.create_project(ProjectName="webcam")["ProjectArn"]
    for kind, count, seed in (("TRAIN", 8, 5), ("TEST", 4, 6)):
        source = {
            "GroundTruthManifest": {
                "S3Object": {"Bucket": bucket, "Name": detection_dataset(s3, bucket, kind, count, seed)}
            }
        }
        dataset = rek.create_dataset(ProjectArn=project, DatasetType=kind, DatasetSource=source)["DatasetArn"]
        deadline = time.monotonic() + 30
        while rek.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["Status"] == "CREATE_IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    output = {"S3Bucket": bucket, "S3KeyPrefix": "eval"}
    version = rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig=output)
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return {"project": project, "version": version["ProjectVersionArn"]}


def _status(rek, trained: dict[str, str]) -> str:
    found = rek.describe_project_versions(ProjectArn=trained["project"], VersionNames=["v1"])
    return found["ProjectVersionDescriptions"][0]["Status"]


@pytest.fixture
def stopped(cloud, trained) -> dict[str, str]:
    rek = cloud.client("rekognition")
    if _status(rek, trained) == "RUNNING":
        rek.stop_project_version(ProjectVersionArn=trained["version"])
    return trained


@pytest.fixture
def running(cloud, trained) -> dict[str, str]:
    rek = cloud.client("rekognition")
    if _status(rek, trained) != "RUNNING":
        rek.start_project_version(ProjectVersionArn=trained["version"], MinInferenceUnits=1)
        rek.get_waiter("project_version_running").wait(
            ProjectArn=trained["project"], VersionNames=["v1"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    return trained


@pytest.fixture
def api(cloud, monkeypatch) -> TestClient:
    point_aws_default(cloud, monkeypatch)
    return TestClient(webcam_app.create_app(auth=False))


def test_before_running_the_version_is_not_listed_and_detect_says_why(api, stopped) -> None:
    projects = api.get("/api/versions").json()["projects"]
    assert {"name": "webcam", "arn": stopped["project"], "versions": []} in projects

    response = api.post("/api/detect", params={"ProjectVersionArn": stopped["version"]}, content=_png())
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["code"] == "ResourceNotReadyException" and "not RUNNING" in detail["message"]
    assert "RUNNING" in detail["hint"]


def test_detect_on_a_running_version_and_the_errors_the_page_shows(api, running) -> None:
    listed = api.get("/api/versions").json()["projects"]
    versions = next(p["versions"] for p in listed if p["arn"] == running["project"])
    assert [(v["arn"], v["name"], v["status"]) for v in versions] == [(running["version"], "v1", "RUNNING")]

    image, _ = rectangle_image(np.random.default_rng(11), 0)
    query = {"ProjectVersionArn": running["version"], "MinConfidence": "0", "MaxResults": "5"}
    raw = api.post("/api/detect", params=query, content=image, headers={"Content-Type": "image/png"})
    assert raw.status_code == 200, raw.text
    labels = raw.json()["labels"]
    assert 1 <= len(labels) <= 5
    for label in labels:
        box = label["box"]
        assert label["name"] in LABELS and 0 <= label["confidence"] <= 100
        assert box["left"] >= 0 and box["left"] + box["width"] <= 1 + 1e-9
        assert box["top"] >= 0 and box["top"] + box["height"] <= 1 + 1e-9
    form = {"ProjectVersionArn": running["version"], "MinConfidence": "0", "MaxResults": "2"}
    multipart = api.post("/api/detect", data=form, files={"image": ("frame.png", image, "image/png")})
    assert multipart.status_code == 200 and 1 <= len(multipart.json()["labels"]) <= 2

    def error(status: int, code: str, content: bytes = image, **params: str) -> str:
        response = api.post("/api/detect", params={**query, **params}, content=content)
        assert response.status_code == status, response.text
        assert response.json()["detail"]["code"] == code
        return response.json()["detail"]["message"]

    assert "neither JPEG nor PNG" in error(415, "InvalidImageFormat", b"GIF89a not a frame")
    # JPEG magic but no JPEG: only Rekognition can tell, and its refusal comes back as it is.
    assert (
        error(415, "InvalidImageFormatException", b"\xff\xd8\xff\xe0 truncated")
        == "Request has unsupported image format."
    )
    error(413, "ImageTooLarge", b"\xff\xd8\xff" + bytes(webcam_app.MAX_IMAGE_BYTES))
    error(400, "MissingImage", b"")
    error(400, "InvalidParameter", MinConfidence="150")
    error(400, "InvalidParameter", MaxResults="many")
    error(400, "MissingParameter", ProjectVersionArn="")
    unknown = running["version"].replace("/version/v1/", "/version/nope/")
    error(404, "ResourceNotFoundException", ProjectVersionArn=unknown)
    no_file = api.post("/api/detect", data=form, files={"other": ("x.txt", b"x", "text/plain")})
    assert no_file.status_code == 400 and no_file.json()["detail"]["code"] == "MissingImage"


# ---------------------------------------------------------------------------------------------------------------------
# Headless Chromium with a fake camera
# ---------------------------------------------------------------------------------------------------------------------
def write_y4m(path: Path, rgb: np.ndarray, frames: int = 5, fps: int = 10) -> Path:
    """A YUV4MPEG2 (4:2:0) clip of ``rgb`` repeated: what Chromium's fake camera plays in a loop."""
    height, width = rgb.shape[:2]
    assert height % 2 == 0 and width % 2 == 0
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    # BT.601 limited range: how Chromium reads I420 frames.
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255

    def plane(values: np.ndarray, subsample: bool) -> bytes:
        if subsample:  # 2x2 block means
            values = values.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
        return np.clip(np.rint(values), 0, 255).astype(np.uint8).tobytes()

    frame = b"FRAME\n" + plane(y, False) + plane(cb, True) + plane(cr, True)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


@pytest.fixture
def served(api) -> str:
    """The webcam app (auth off, aws_default -> the localcloud) on a free port, served by uvicorn in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


# The fake camera: a clip instead of a device, granted without a prompt.
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def test_chromium_with_a_fake_camera_draws_the_models_boxes(served, running, tmp_path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    rgb = np.asarray(Image.open(io.BytesIO(rectangle_image(np.random.default_rng(21), 0)[0])).convert("RGB"))
    clip = write_y4m(tmp_path / "camera.y4m", rgb.repeat(2, axis=0).repeat(2, axis=1))  # 256x256, like a frame
    args = [*CHROMIUM_ARGS, *CAMERA_ARGS, f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=args, timeout=30_000
        )
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(served, timeout=15_000)
            page.wait_for_function("window.webcamState && window.webcamState.versions > 0", timeout=15_000)
            page.select_option("#version", running["version"])
            page.fill("#confidence", "1")
            assert page.locator("#confidence-value").text_content() == "1"
            page.click("#toggle")
            page.wait_for_function(
                "window.webcamState.boxesDrawn > 0 && window.webcamState.responses >= 2", timeout=45_000
            )
            state = page.evaluate("window.webcamState")
            video = page.evaluate(
                "[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]"
            )
            painted = page.evaluate(
                """() => {
                    const c = document.getElementById('overlay');
                    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0;
                    for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
                    return n;
                }"""
            )
            page.screenshot(path=str(tmp_path / "webcam.png"))
        finally:
            browser.close()

    assert video == [256, 256]  # the frames came from our clip, not Chromium's built-in test pattern
    assert state["lastError"] is None, (state, console)
    assert state["lastLabels"] and {label["name"] for label in state["lastLabels"]} <= LABELS
    assert state["lastBoxes"] > 0 and painted > 0  # boxes were drawn on the overlay, not just counted
    assert state["maxInFlight"] == 1  # one frame at a time
    assert state["frames"] >= state["responses"] >= 2
