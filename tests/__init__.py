"""Test suite. Expectations shared by several test modules live here, written out (not
imported from the code under test) so a test can fail when the code drifts."""

STAGE_GROUPS = (
    "ingest",
    "transform",
    "attribution",
    "mix_model",
    "experiments",
    "triangulation",
    "reporting",
)
"""Asset groups of dagster_project/definitions.py (``quality`` holds asset checks, no assets)."""
