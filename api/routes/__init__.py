"""The API's routes, one module per resource: ``performance`` (GET, read scope) and
``trades`` (POST, write scope). Each route is thin: inputs -> a service call -> a model."""
