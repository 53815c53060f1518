"""The OpenAPI description of /api/ (checked against real responses in tests/test_json_api.py).

Request bodies come from the pydantic schemas the endpoints validate with, so the
description cannot drift from what is accepted.
"""

RESULT = {
    "type": "object",
    "required": ["id", "filename", "path", "thumbnail", "width", "height", "format", "metadata"],
    "properties": {
        "id": {"type": "integer"},
        "filename": {"type": "string"},
        "path": {"type": "string", "format": "uri"},
        "thumbnail": {"type": "string", "format": "uri"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "format": {"type": "string"},
        "byte_size": {"type": "integer"},
        "sha256": {"type": "string"},
        "source_path": {"type": "string"},
        "similarity": {"type": "number", "description": "1 - cosine distance, in [-1, 1]"},
        "metadata": {"type": "object"},
    },
}
ERROR = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
}


def _errors(*codes: int) -> dict:
    return {str(code): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for code in codes}


def _ok(schema: dict) -> dict:
    return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}


def document(base_url: str) -> dict:
    from gallery.json_api import MetadataChange
    from search.json_api import SearchRequest

    results = {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": RESULT}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "imgsim", "version": "1", "description": "Find photos by what they show."},
        "servers": [{"url": base_url.rstrip("/")}],
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            }
        },
        "security": [{"token": []}, {"session": []}],
        "paths": {
            "/search": {
                "post": {
                    "summary": "Photos most similar to a text, a stored photo (image_id) or an uploaded image",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": SearchRequest.model_json_schema()},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"image": {"type": "string", "format": "binary"}},
                                }
                            },
                        }
                    },
                    "responses": {**_ok(results), **_errors(400, 401, 403, 413, 415, 503)},
                }
            },
            "/upload": {
                "post": {
                    "summary": "Add photos (multipart field 'files', one or many); editor role",
                    "responses": {
                        **_ok({"type": "object", "required": ["results"]}),
                        **_errors(400, 401, 403, 413, 415),
                    },
                }
            },
            "/images/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "get": {"summary": "One photo", "responses": {**_ok(RESULT), **_errors(401, 404)}},
                "patch": {
                    "summary": "Change title, description, category, location or tags; editor role",
                    "requestBody": {"content": {"application/json": {"schema": MetadataChange.model_json_schema()}}},
                    "responses": {**_ok(RESULT), **_errors(400, 401, 403, 404)},
                },
                "delete": {
                    "summary": "Move the photo to the trash (restorable on /trash/); editor role",
                    "responses": {**_ok({"type": "object", "required": ["id", "trashed"]}), **_errors(401, 403, 404)},
                },
            },
            "/stats": {
                "get": {
                    "summary": "Library statistics (get_stats)",
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["total_images", "avg_width", "avg_height", "embedding_model"],
                            }
                        ),
                        **_errors(401),
                    },
                }
            },
            "/duplicates": {
                "get": {
                    "summary": "Duplicate groups waiting for review; editor role",
                    "responses": {**_ok({"type": "object", "required": ["groups"]}), **_errors(401, 403)},
                }
            },
        },
    }
