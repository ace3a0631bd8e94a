"""The proxy's own OpenAPI 3.1 description, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
MESSAGE = {
    "type": "object",
    "required": ["id", "role", "text", "html", "status", "stopped", "sources", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "role": {"enum": ["user", "assistant"]},
        "text": {"type": "string"},
        "html": {"type": "string"},
        "status": {"enum": ["pending", "streaming", "done", "error"]},
        "stopped": {"type": "boolean"},
        "sources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "url"],
                "properties": {"title": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "created_at": {"type": "string"},
        "feedback": {"enum": ["up", "down", None]},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "error", "content": _json({"$ref": "#/components/schemas/Error"})}
        for c in codes
    }


SID = {"name": "sid", "in": "path", "required": True, "schema": {"type": "string"}}
MID = {"name": "mid", "in": "path", "required": True, "schema": {"type": "integer"}}
ONE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"$ref": "#/components/schemas/Message"}},
}


def describe() -> dict[str, Any]:
    """The description of every public route."""
    message_ref = {"$ref": "#/components/schemas/Message"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "docschat", "version": "1"},
        "paths": {
            "/api/sessions": {
                "post": {
                    "operationId": "createSession",
                    "responses": {
                        "201": {
                            "description": "created",
                            "content": _json(
                                {
                                    "type": "object",
                                    "required": ["session_id"],
                                    "properties": {"session_id": {"type": "string"}},
                                }
                            ),
                        },
                        **_errors(403, 429, 503),
                    },
                }
            },
            "/api/sessions/{sid}": {
                "delete": {
                    "operationId": "clearSession",
                    "parameters": [SID],
                    "responses": {"204": {"description": "cleared"}, **_errors(403, 404, 503)},
                }
            },
            "/api/sessions/{sid}/messages": {
                "get": {
                    "operationId": "listMessages",
                    "parameters": [
                        SID,
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "messages in order",
                            "content": _json(
                                {
                                    "type": "object",
                                    "required": ["messages"],
                                    "properties": {
                                        "messages": {"type": "array", "items": message_ref}
                                    },
                                }
                            ),
                        },
                        **_errors(400, 403, 404, 503),
                    },
                },
                "post": {
                    "operationId": "ask",
                    "parameters": [SID],
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["text"],
                                "properties": {"text": {"type": "string", "maxLength": 4000}},
                            }
                        ),
                    },
                    "responses": {
                        "202": {"description": "accepted", "content": _json(ONE)},
                        **_errors(400, 403, 404, 409, 413, 415, 429, 503),
                    },
                },
            },
            "/api/sessions/{sid}/messages/{mid}/feedback": {
                "post": {
                    "operationId": "feedback",
                    "parameters": [SID, MID],
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["rating"],
                                "properties": {
                                    "rating": {"enum": ["up", "down"]},
                                    "comment": {"type": "string", "maxLength": 2000},
                                },
                            }
                        ),
                    },
                    "responses": {
                        "200": {"description": "recorded", "content": _json({"type": "object"})},
                        **_errors(400, 403, 404, 413, 415, 503),
                    },
                }
            },
            "/api/sessions/{sid}/messages/{mid}/stop": {
                "post": {
                    "operationId": "stop",
                    "parameters": [SID, MID],
                    "responses": {
                        "200": {"description": "stopping", "content": _json(ONE)},
                        **_errors(403, 404, 503),
                    },
                }
            },
            "/api/sessions/{sid}/messages/{mid}/retry": {
                "post": {
                    "operationId": "retry",
                    "parameters": [SID, MID],
                    "responses": {
                        "202": {"description": "asked again", "content": _json(ONE)},
                        **_errors(403, 404, 409, 429, 503),
                    },
                }
            },
            "/healthz": {
                "get": {"operationId": "health", "responses": {"200": {"description": "alive"}}}
            },
        },
        "components": {"schemas": {"Error": ERROR, "Message": MESSAGE}},
    }
