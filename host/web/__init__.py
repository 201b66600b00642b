"""HTTP: API step routes, the OpenAPI document, the admin API."""
