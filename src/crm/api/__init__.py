"""The service's HTTP layer: endpoints declared once (endpoint.py), their inputs (inputs.py) and
the OpenAPI document made from the same declarations (openapi.py)."""

from crm.api.endpoint import Answer, Call, Endpoint, NoParams, Routes

__all__ = ["Answer", "Call", "Endpoint", "NoParams", "Routes"]
