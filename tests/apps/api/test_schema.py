import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_documents_every_endpoint_with_its_errors():
    response = APIClient().get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "400" in operation["responses"], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"


def test_the_api_docs_page_is_served():
    assert APIClient().get("/api/docs/").status_code == 200
