"""The API's typed request and response models (pydantic): the OpenAPI document is made from
them. ``performance``: what the performance routes answer; ``trades``: a trade in (POST) and
out (the trade list)."""
