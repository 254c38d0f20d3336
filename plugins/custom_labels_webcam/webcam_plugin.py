"""Registers the Custom Labels webcam page with Airflow: the FastAPI app under /webcam and a nav link to it."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from custom_labels_webcam.webcam_app import app

URL_PREFIX = "/webcam"


class CustomLabelsWebcamPlugin(AirflowPlugin):
    """The webcam page as a plugin app of the API server, shown inside the Airflow UI."""

    name = "custom_labels_webcam"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Custom Labels webcam"}]
    # With a url_route the UI embeds the page (same origin: the session cookie and the camera work in the iframe).
    external_views = [
        {
            "name": "Custom Labels webcam",
            "href": f"{URL_PREFIX}/",
            "url_route": "custom-labels-webcam",
            "destination": "nav",
            "category": "browse",
        }
    ]
