"""The published schema is valid OpenAPI and describes every resource the console offers."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

RESOURCES = [
    "/api/clusters/",
    "/api/nodes/",
    "/api/redundancy-groups/{id}/",
    "/api/redundancy-groups/{id}/server-actions/",
    "/api/redundancy-groups/{id}/ha/",
    "/api/end-users/",
    "/api/end-users/assign/",
    "/api/services/{id}/start/",
    "/api/services/{id}/stop/",
    "/api/services/{id}/restart/",
    "/api/services/{id}/activate/",
    "/api/ha-transitions/",
    "/api/srm-alarms/",
    "/api/service-parameters/{id}/",
    "/api/node-service-parameters/{id}/",
    "/api/chat-settings/{id}/",
    "/api/chat-aliases/",
    "/api/group-chat-administrators/",
    "/api/chat-database-assignments/",
    "/api/external-databases/",
    "/api/external-databases/{id}/check/",
    "/api/external-databases/{id}/install-schema/",
    "/api/external-databases/{id}/status/",
    "/api/verify-ha/",
    "/api/merge-jobs/",
    "/api/merge-jobs/{id}/merge/",
    "/api/merge-jobs/{id}/cancel/",
    "/api/merge-jobs/{id}/log/",
    "/api/merge-jobs/preview/",
    "/api/rooms/",
    "/api/audit/",
]


def test_schema_is_valid_openapi_and_describes_every_resource(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)  # raises on any violation of the OpenAPI 3 specification
    assert schema["openapi"].startswith("3.")
    missing = [path for path in RESOURCES if path not in schema["paths"]]
    assert not missing
    database = schema["components"]["schemas"]["ExternalDatabase"]["properties"]
    assert "password" not in database  # write-only: in the request schema only
    assert "password" in schema["components"]["schemas"]["ExternalDatabaseRequest"]["properties"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "patch", "delete"}:
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path} documents no auth errors"


def test_schema_needs_authentication(client):
    assert client.get("/api/schema/").status_code == 401


def test_swagger_ui_is_served_locally(client, read_only):
    client.force_login(read_only)
    page = client.get("/api/docs/").content.decode()
    assert "http://" not in page.replace("http://testserver", "") and "https://" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    # Under the console's Content-Security-Policy: no inline script or style (the split view's
    # initialisation is a script file of its own).
    assert "<style" not in page and "<script>" not in page
    assert "?script=" in page
