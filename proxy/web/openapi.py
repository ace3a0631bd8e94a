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
            "required": ["code", "message", "request_id"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "readable, for people"},
                "request_id": {
                    "type": "string",
                    "description": "the X-Request-Id of the answer: quote it when reporting",
                },
            },
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
                "properties": {
                    "title": {"type": "string"},
                    # The url ends in #anchor when the cited text's section is known.
                    "url": {"type": "string"},
                    "section": {
                        "type": "string",
                        "description": "The heading of the cited section, when known",
                    },
                },
            },
        },
        "created_at": {"type": "string"},
        "feedback": {"enum": ["up", "down", None]},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    """The error answers of an operation; any operation may fail with 500 (our bug)."""
    return {
        str(c): {"description": "error", "content": _json({"$ref": "#/components/schemas/Error"})}
        for c in (*codes, 500)
    }


# A question: up to 4,000 characters with something besides white space, and no NUL characters.
SID = {"name": "sid", "in": "path", "required": True, "schema": {"type": "string"}}
MID = {"name": "mid", "in": "path", "required": True, "schema": {"type": "integer"}}
ONE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"$ref": "#/components/schemas/Message"}},
}


COUNT = {"type": "integer", "minimum": 0}
STATS = {
    "type": "object",
    "required": ["sessions", "questions", "answers", "feedback", "documents", "today"],
    "properties": {
        "sessions": COUNT,
        "questions": COUNT,
        "answers": {
            "type": "object",
            "required": ["pending", "streaming", "done", "error"],
            "additionalProperties": COUNT,
        },
        "feedback": {
            "type": "object",
            "required": ["up", "down"],
            "properties": {"up": COUNT, "down": COUNT},
        },
        "documents": COUNT,
        "today": {"type": "object", "additionalProperties": COUNT},
    },
}
FEEDBACK_EXPORT = {
    "type": "object",
    "required": ["feedback", "next_after"],
    "properties": {
        "next_after": COUNT,
        "feedback": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "message_id", "rating", "comment", "question", "answer"],
                "properties": {
                    "id": COUNT,
                    "message_id": COUNT,
                    "rating": {"enum": ["up", "down"]},
                    "comment": {"type": "string"},
                    "rated_at": {"type": "string"},
                    "question": {"type": "string"},
                    "answer": {"type": "string"},
                    "sources": {"type": "array"},
                },
            },
        },
    },
}
ADMIN = [{"adminToken": []}]


def _question(max_chars: int) -> dict[str, Any]:
    """A question: some non-blank text without NUL characters, within the configured length."""
    return {"type": "string", "maxLength": max_chars, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$"}


def _admin_paths() -> dict[str, Any]:
    """Operator endpoints: 404 while DOCSCHAT_ADMIN_TOKEN is unset, 401 without the token."""
    page = [
        {"name": "after", "in": "query", "required": False, "schema": COUNT},
        {"name": "limit", "in": "query", "required": False, "schema": COUNT},
    ]
    return {
        "/api/admin/stats": {
            "get": {
                "operationId": "adminStats",
                "security": ADMIN,
                "responses": {
                    "200": {"description": "usage figures", "content": _json(STATS)},
                    **_errors(401, 403, 404, 503),
                },
            }
        },
        "/api/admin/feedback": {
            "get": {
                "operationId": "adminFeedback",
                "security": ADMIN,
                "parameters": page,
                "responses": {
                    "200": {"description": "rated answers", "content": _json(FEEDBACK_EXPORT)},
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
    }


def _links(sid: str, **more: str) -> dict[str, Any]:
    """OpenAPI links from a response to the calls a client makes next (used by stateful fuzzing)."""
    targets = {
        "listMessages": {},
        "ask": {},
        "clearSession": {},
        **{op: {"mid": mid} for op, mid in more.items()},
    }
    return {
        op: {"operationId": op, "parameters": {"sid": sid, **params}}
        for op, params in targets.items()
    }


def describe(max_question_chars: int) -> dict[str, Any]:
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
                            "links": _links("$response.body#/session_id"),
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
                            # The first answer is the second message of a conversation.
                            "links": _links(
                                "$request.path.sid",
                                feedback="$response.body#/messages/1/id",
                                stop="$response.body#/messages/1/id",
                                retry="$response.body#/messages/1/id",
                            ),
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
                                "properties": {"text": _question(max_question_chars)},
                            }
                        ),
                    },
                    "responses": {
                        "202": {
                            "description": "accepted",
                            "content": _json(ONE),
                            "links": _links("$request.path.sid"),
                        },
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
                                    "comment": {
                                        "type": "string",
                                        "maxLength": 2000,
                                        "pattern": "^[^\\u0000]*$",
                                    },
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
            **_admin_paths(),
        },
        "components": {
            "schemas": {"Error": ERROR, "Message": MESSAGE},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
