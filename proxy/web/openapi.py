"""The proxy's own OpenAPI 3.1 description, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from proxy.documents.search import MAX_LIMIT, MAX_QUERY_CHARS

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


FOUND = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "url", "snippet"],
                "properties": {
                    "title": {"type": "string"},
                    "url": {"type": "string"},
                    "snippet": {"type": "string"},
                    "section": {"type": "string"},
                },
            },
        }
    },
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
STRING = {"type": "string"}
SOURCES = {
    "type": "array",
    "items": {"type": "object", "properties": {"title": STRING, "url": STRING}},
}
OVERVIEW = {
    "type": "object",
    "required": [
        "since",
        "questions",
        "per_day",
        "answers",
        "feedback",
        "top_pages",
        "answer_seconds",
        "today",
        "handoff",
        "settings",
    ],
    "properties": {
        "since": STRING,
        "questions": COUNT,
        "per_day": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["date", "questions"],
                "properties": {"date": STRING, "questions": COUNT},
            },
        },
        "answers": {
            "type": "object",
            "required": ["answered", "uncovered", "failed", "pending"],
            "additionalProperties": COUNT,
        },
        "feedback": {"type": "object", "properties": {"up": COUNT, "down": COUNT}},
        "top_pages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["url", "title", "count"],
                "properties": {"url": STRING, "title": STRING, "count": COUNT},
            },
        },
        "answer_seconds": {
            "type": "object",
            "properties": {
                "p50": {"type": ["number", "null"]},
                "p95": {"type": ["number", "null"]},
            },
        },
        "today": {"type": "object", "additionalProperties": COUNT},
        "handoff": {"type": "object", "properties": {"offered": COUNT, "followed": COUNT}},
        "settings": {
            "type": "object",
            "properties": {"retention_days": COUNT, "handoff": {"type": "boolean"}},
        },
    },
}
GAP_QUESTION = {
    "type": "object",
    "required": ["text", "reason", "asked_at", "comment", "conversation", "answer"],
    "properties": {
        "text": STRING,
        "reason": {"enum": ["uncovered", "disliked"]},
        "comment": STRING,
        "asked_at": STRING,
        "conversation": {"type": "string", "description": "console id of the conversation"},
        "answer": STRING,
    },
}
GAPS = {
    "type": "object",
    "required": ["since", "groups"],
    "properties": {
        "since": STRING,
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "label", "count", "questions"],
                "properties": {
                    "id": STRING,
                    "label": STRING,
                    "count": COUNT,
                    "first_asked": STRING,
                    "last_asked": STRING,
                    "reasons": {"type": "object", "additionalProperties": COUNT},
                    "resolved": {"type": "boolean"},
                    "resolved_at": {"type": ["string", "null"]},
                    "questions": {"type": "array", "items": GAP_QUESTION},
                },
            },
        },
    },
}
CONVERSATIONS = {
    "type": "object",
    "required": ["total", "conversations"],
    "properties": {
        "total": COUNT,
        "conversations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "started_at", "last_at", "questions", "first_question"],
                "properties": {
                    "id": STRING,
                    "started_at": STRING,
                    "last_at": STRING,
                    "questions": COUNT,
                    "first_question": STRING,
                    "uncovered": COUNT,
                    "disliked": COUNT,
                    "failed": COUNT,
                },
            },
        },
    },
}
TRANSCRIPT = {
    "type": "object",
    "required": ["id", "started_at", "messages"],
    "properties": {
        "id": STRING,
        "started_at": STRING,
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "role", "text", "status", "sources", "created_at", "feedback"],
                "properties": {
                    "id": COUNT,
                    "role": {"enum": ["user", "assistant"]},
                    "text": STRING,
                    "status": {"enum": ["pending", "streaming", "done", "error"]},
                    "sources": SOURCES,
                    "created_at": STRING,
                    "feedback": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "properties": {
                                    "rating": {"enum": ["up", "down"]},
                                    "comment": STRING,
                                },
                            },
                        ]
                    },
                },
            },
        },
    },
}
DAYS = {
    "name": "days",
    "in": "query",
    "required": False,
    "description": "how many days back, today included (default 30)",
    "schema": {"type": "integer", "minimum": 1, "maximum": 366},
}
GROUP_ID = {"name": "group_id", "in": "path", "required": True, "schema": STRING}


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
        "/api/admin/overview": {
            "get": {
                "operationId": "adminOverview",
                "security": ADMIN,
                "parameters": [DAYS],
                "responses": {
                    "200": {"description": "the console's overview", "content": _json(OVERVIEW)},
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/api/admin/gaps": {
            "get": {
                "operationId": "adminGaps",
                "security": ADMIN,
                "parameters": [
                    DAYS,
                    {
                        "name": "resolved",
                        "in": "query",
                        "required": False,
                        "description": "1: include groups marked resolved",
                        "schema": STRING,
                    },
                ],
                "responses": {
                    "200": {"description": "gap groups", "content": _json(GAPS)},
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/api/admin/gaps/export": {
            "get": {
                "operationId": "adminGapsExport",
                "security": ADMIN,
                "parameters": [
                    DAYS,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["csv", "markdown"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "open gap groups as a file",
                        "content": {
                            "text/csv": {"schema": STRING},
                            "text/markdown": {"schema": STRING},
                        },
                    },
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/api/admin/gaps/{group_id}/resolve": {
            "post": {
                "operationId": "adminResolveGap",
                "security": ADMIN,
                "parameters": [GROUP_ID, DAYS],
                "responses": {
                    "200": {
                        "description": "marked resolved until its topic is asked again",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["id", "resolved_at"],
                                "properties": {"id": STRING, "resolved_at": STRING},
                            }
                        ),
                    },
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            },
            "delete": {
                "operationId": "adminReopenGap",
                "security": ADMIN,
                "parameters": [GROUP_ID],
                "responses": {
                    "204": {"description": "shown again"},
                    **_errors(401, 403, 404, 429, 503),
                },
            },
        },
        "/api/admin/conversations": {
            "get": {
                "operationId": "adminConversations",
                "security": ADMIN,
                "parameters": [
                    *(
                        {"name": n, "in": "query", "required": False, "schema": STRING}
                        for n in ("uncovered", "disliked", "failed", "q")
                    ),
                    *(
                        {
                            "name": n,
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date"},
                        }
                        for n in ("from", "to")
                    ),
                    {"name": "limit", "in": "query", "required": False, "schema": COUNT},
                    {"name": "offset", "in": "query", "required": False, "schema": COUNT},
                ],
                "responses": {
                    "200": {"description": "conversations", "content": _json(CONVERSATIONS)},
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/api/admin/conversations/{cid}": {
            "get": {
                "operationId": "adminConversation",
                "security": ADMIN,
                "parameters": [{"name": "cid", "in": "path", "required": True, "schema": STRING}],
                "responses": {
                    "200": {"description": "the transcript", "content": _json(TRANSCRIPT)},
                    **_errors(401, 403, 404, 429, 503),
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


def _text(operation: str, description: str) -> dict[str, Any]:
    """A GET that answers plain text (Markdown)."""
    content = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "get": {
            "operationId": operation,
            "responses": {"200": {"description": description, "content": content}},
        }
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
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        },
                    ],
                    "responses": {
                        "200": {"description": "the best pages first", "content": _json(FOUND)},
                        **_errors(400, 403, 429, 503),
                        # gunicorn refuses a request line over 4,094 bytes before the app runs.
                        "414": {"description": "query too long for the web server"},
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
            "/llms.txt": _text("llmsTxt", "the stored pages as an llms.txt index of links"),
            "/llms-full.txt": _text("llmsFullTxt", "every stored page's Markdown"),
            "/api/sessions/{sid}/handoff": {
                "post": {
                    "operationId": "handoff",
                    "parameters": [SID],
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["event"],
                                "properties": {"event": {"enum": ["offered", "followed"]}},
                            }
                        ),
                    },
                    "responses": {
                        "204": {"description": "counted"},
                        **_errors(400, 403, 404, 415, 429, 503),
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
