"""Webcam page for Rekognition Custom Labels: browser frames -> DetectCustomLabels -> labelled boxes, live.

``webcam_app`` is the FastAPI app, ``webcam_plugin`` registers it (and a nav link) with Airflow's API server.
Nothing is re-exported here on purpose: Airflow imports every ``.py`` under the plugins folder as a top-level module
and registers each ``AirflowPlugin`` subclass it finds, so a re-export would register the plugin twice.
"""
