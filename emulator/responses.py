"""Responses API and Conversations: background or streamed responses with file_search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request

from emulator.errors import ApiError, invalid, not_found
from emulator.faults import RUN_KINDS, STREAM_KINDS, stream_break
from emulator.search import NOT_FOUND, Answer, Segment, answer, scripted, split_tokens
from emulator.state import json_body, new_id, now, paginate, state, word_count
from emulator.timeline import Chunk, Event, Job, pump
from emulator.validation import (
    AnyValue,
    Bool,
    Enum,
    ListOf,
    Metadata,
    Nullable,
    Num,
    Obj,
    OneOf,
    Str,
    check_body,
    query_bool,
)

bp = Blueprint("responses", __name__)

FAULT_OUTCOMES = {
    "run_failed": "failed",
    "run_expired": "failed",  # the Responses API has no expired status
    "run_incomplete": "incomplete",
    "run_never_finishes": "never",
}
INCLUDES = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
ROLES = ("user", "assistant", "system", "developer")
INPUT_ITEM = Obj(
    {
        "type": Str(),
        "role": Enum(*ROLES),
        "content": OneOf(
            Str(),
            ListOf(Obj({"type": Str(), "text": Str()}, required=["type"])),
            expected="a string or an array",
        ),
        "id": Str(),
        "status": AnyValue(),
    }
)
TOOL_TYPES = (
    "function",
    "file_search",
    "computer",
    "computer_use_preview",
    "web_search",
    "web_search_2025_08_26",
    "mcp",
    "code_interpreter",
    "programmatic_tool_calling",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "namespace",
    "tool_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "apply_patch",
)
TOOL = Obj(
    {
        "type": Enum(*TOOL_TYPES),
        "vector_store_ids": ListOf(Str()),
        "max_num_results": Num(integer=True, minimum=1, maximum=50),
        "filters": AnyValue(),
        "ranking_options": AnyValue(),
    },
    required=["type"],
)
CONVERSATION_REF = OneOf(
    Str(non_empty=True),
    Obj({"id": Str(non_empty=True)}, required=["id"], extra=False),
    expected="a string or an object",
)
RESPONSE_CREATE = Obj(
    {
        "model": Str(non_empty=True),
        "input": OneOf(Str(), ListOf(INPUT_ITEM), expected="a string or an array"),
        "instructions": Nullable(Str()),
        "conversation": Nullable(CONVERSATION_REF),
        "previous_response_id": Nullable(Str()),
        "tools": ListOf(TOOL),
        "tool_choice": AnyValue(),
        "include": Nullable(ListOf(Enum(*INCLUDES))),
        "background": Nullable(Bool()),
        "store": Nullable(Bool()),
        "stream": Nullable(Bool()),
        "stream_options": AnyValue(),
        "metadata": Metadata(),
        "max_output_tokens": Nullable(Num(integer=True, minimum=16)),
        "max_tool_calls": Nullable(Num(integer=True, minimum=1)),
        "parallel_tool_calls": Nullable(Bool()),
        "temperature": Nullable(Num(minimum=0, maximum=2)),
        "top_p": Nullable(Num(minimum=0, maximum=1)),
        "top_logprobs": Nullable(Num(integer=True, minimum=0, maximum=20)),
        "truncation": Nullable(Enum("auto", "disabled")),
        "service_tier": Nullable(Enum("auto", "default", "flex", "scale", "priority")),
        "user": Nullable(Str()),
        "safety_identifier": Nullable(Str()),
        "prompt_cache_key": Nullable(Str()),
        "prompt_cache_retention": Nullable(Enum("in_memory", "24h")),
        **{
            name: AnyValue()
            for name in (
                "access_programs",
                "background_options",
                "context_management",
                "image",
                "moderation",
                "prompt",
                "prompt_cache_options",
                "reasoning",
                "text",
            )
        },
    },
    required=["model"],
    extra=False,
)
CONVERSATION_CREATE = Obj(
    {"items": Nullable(ListOf(INPUT_ITEM, max_items=20)), "metadata": Metadata()}, extra=False
)


@dataclass
class ResponseRec:
    """A response: its request, its planned answer and its timing."""

    id: str
    job: Job
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    metadata: dict[str, Any]
    background: bool
    store: bool
    include_results: bool
    conversation_id: str | None
    question: str
    reply: Answer
    input_tokens: int
    error_message: str
    settings: dict[str, Any]
    fs_id: str = field(default_factory=lambda: new_id("fs"))
    msg_id: str = field(default_factory=lambda: new_id("msg"))

    @property
    def searches(self) -> bool:
        """Whether the request carried a file_search tool."""
        return any(t.get("type") == "file_search" for t in self.tools)


@dataclass
class ConvItem:
    """A conversation item: a fixed object, or output `item_id` of a response once it ended."""

    id: str
    obj: dict[str, Any] | None = None
    response: ResponseRec | None = None

    def visible(self, at: float) -> bool:
        """Output items join the conversation when their response completes (or stops short)."""
        if self.response is None:
            return True
        job = self.response.job
        return job.terminal_time(at) is not None and job.status(at) in ("completed", "incomplete")

    def render(self, at: float) -> dict[str, Any]:
        """The item as the conversation shows it."""
        if self.obj is not None:
            return self.obj
        assert self.response is not None
        for item in output_items(self.response, at):
            if item["id"] == self.id:
                return item
        raise KeyError(self.id)


@dataclass
class Conversation:
    """A conversation and its items, oldest first."""

    id: str
    created_at: int
    metadata: dict[str, Any]
    items: list[ConvItem] = field(default_factory=list)

    def obj(self) -> dict[str, Any]:
        """The OpenAI conversation object."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


# --- rendering ---------------------------------------------------------------------------------


def _message_item(role: str, content: Any, item_id: str | None = None) -> dict[str, Any]:
    """A stored conversation message item from an input item's content."""
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts = [{"type": kind, "text": content}]
    else:
        parts = [dict(p) for p in content]
    for p in parts:
        if p.get("type") == "output_text":
            p.setdefault("annotations", [])
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": parts,
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if isinstance(p.get("text"), str))


def _text_and_notes(rec: ResponseRec, at: float) -> tuple[str, list[dict[str, Any]]]:
    text = ""
    notes = []
    for chunk in rec.job.chunks[: rec.job.emitted(at)]:
        text += chunk.text
        if chunk.citation is not None:
            notes.append(_note(chunk, len(text)))
    return text, notes


def _note(chunk: Chunk, index: int) -> dict[str, Any]:
    assert chunk.citation is not None
    return {
        "type": "file_citation",
        "file_id": chunk.citation.file_id,
        "filename": chunk.citation.filename,
        "index": index,
    }


def _fs_item(rec: ResponseRec, done: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": rec.fs_id,
        "type": "file_search_call",
        "status": "completed" if done else "in_progress",
        "queries": [rec.question],
        "results": None,
    }
    if done and rec.include_results:
        item["results"] = [
            {
                "file_id": c.file_id,
                "filename": c.filename,
                "score": c.score,
                "text": c.text,
                "attributes": dict(c.attributes),
            }
            for c in rec.reply.results
        ]
    return item


def _msg_item(rec: ResponseRec, at: float) -> dict[str, Any]:
    job = rec.job
    text, notes = _text_and_notes(rec, at)
    status = job.status(at)
    if status == "completed":
        item_status = "completed"
    elif job.terminal_time(at) is not None:
        item_status = "incomplete"
    else:
        item_status = "in_progress"
    return {
        "id": rec.msg_id,
        "type": "message",
        "role": "assistant",
        "status": item_status,
        "content": [{"type": "output_text", "text": text, "annotations": notes, "logprobs": []}],
    }


def output_items(rec: ResponseRec, at: float) -> list[dict[str, Any]]:
    """The response's output as of `at`: the file search call, then the message."""
    job = rec.job
    items = []
    # The search runs as the response starts (unless it failed or was cancelled before).
    started = at >= job.start_at and job.start_at <= job.cut
    if rec.searches and started and job.outcome not in ("failed", "expired"):
        items.append(_fs_item(rec, True))
    if job.token_times and job.token_times[0] <= min(at, job.cut):
        items.append(_msg_item(rec, at))
    return items


def response_obj(rec: ResponseRec, at: float) -> dict[str, Any]:
    """The OpenAI response object as of `at`."""
    job = rec.job
    status = job.status(at)
    if status == "expired":
        status = "failed"
    if status == "queued" and not rec.background:
        status = "in_progress"
    ended = job.terminal_time(at)
    obj: dict[str, Any] = {
        "id": rec.id,
        "object": "response",
        "created_at": int(job.created),
        "status": status,
        "background": rec.background,
        "completed_at": int(ended) if ended is not None and status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": rec.instructions,
        "max_output_tokens": rec.settings.get("max_output_tokens"),
        "max_tool_calls": rec.settings.get("max_tool_calls"),
        "model": rec.model,
        "output": output_items(rec, at),
        "parallel_tool_calls": rec.settings.get("parallel_tool_calls", True),
        "previous_response_id": rec.settings.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": rec.settings.get("service_tier") or "default",
        "store": rec.store,
        "temperature": rec.settings.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": rec.settings.get("tool_choice") or "auto",
        "tools": rec.tools,
        "top_logprobs": 0,
        "top_p": rec.settings.get("top_p", 1.0),
        "truncation": rec.settings.get("truncation") or "disabled",
        "usage": None,
        "user": None,
        "metadata": rec.metadata,
        "conversation": {"id": rec.conversation_id} if rec.conversation_id else None,
    }
    if status == "failed":
        obj["error"] = {"code": "server_error", "message": rec.error_message}
    elif status == "incomplete":
        obj["incomplete_details"] = {"reason": "max_output_tokens"}
    if ended is not None:
        out = job.emitted(at)
        obj["usage"] = {
            "input_tokens": rec.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": rec.input_tokens + out,
        }
    return obj


def _plan(rec: ResponseRec) -> list[Event]:
    """Every event a stream of this response carries, numbered by sequence_number."""
    job = rec.job
    raw: list[tuple[float, str, dict[str, Any]]] = []
    c = job.created
    raw.append((c, "response.created", {"response": response_obj(rec, c)}))
    if rec.background:
        raw.append((c, "response.queued", {"response": response_obj(rec, c)}))
    s = job.start_at
    raw.append((s, "response.in_progress", {"response": response_obj(rec, s)}))
    index = 0
    if rec.searches and job.outcome not in ("failed", "expired"):
        where = {"output_index": 0, "item_id": rec.fs_id}
        raw.append(
            (s, "response.output_item.added", {"output_index": 0, "item": _fs_item(rec, False)})
        )
        raw.append((s, "response.file_search_call.in_progress", dict(where)))
        raw.append((s, "response.file_search_call.searching", dict(where)))
        raw.append((s, "response.file_search_call.completed", dict(where)))
        raw.append(
            (s, "response.output_item.done", {"output_index": 0, "item": _fs_item(rec, True)})
        )
        index = 1
    if job.token_times:
        t0 = job.token_times[0]
        where = {"item_id": rec.msg_id, "output_index": index, "content_index": 0}
        opened = {**_msg_item(rec, t0), "status": "in_progress", "content": []}
        raw.append((t0, "response.output_item.added", {"output_index": index, "item": opened}))
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        raw.append((t0, "response.content_part.added", {**where, "part": empty}))
        text = ""
        notes = 0
        for i, chunk in enumerate(job.chunks[: job.limit]):
            t = job.token_times[i]
            text += chunk.text
            raw.append(
                (t, "response.output_text.delta", {**where, "delta": chunk.text, "logprobs": []})
            )
            if chunk.citation is not None:
                note = {**where, "annotation_index": notes, "annotation": _note(chunk, len(text))}
                raw.append((t, "response.output_text.annotation.added", note))
                notes += 1
        end = job.end_time
        item = _msg_item(rec, end)
        raw.append((end, "response.output_text.done", {**where, "text": text, "logprobs": []}))
        raw.append((end, "response.content_part.done", {**where, "part": item["content"][0]}))
        raw.append((end, "response.output_item.done", {"output_index": index, "item": item}))
    if job.outcome != "never":
        end = job.end_time
        final = response_obj(rec, end)
        raw.append((end, f"response.{final['status']}", {"response": final}))
    return [
        Event(t, name, {"type": name, "sequence_number": n, **data})
        for n, (t, name, data) in enumerate(raw)
    ]


# --- helpers -----------------------------------------------------------------------------------


def _conversation(conversation_id: str) -> Conversation:
    found = state().conversations.get(conversation_id)
    if found is None:
        raise not_found("conversation", conversation_id)
    return found


def _response(response_id: str) -> ResponseRec:
    found = state().responses.get(response_id)
    if found is None or not found.store:
        raise ApiError(404, f"Response with id '{response_id}' not found.", param="response_id")
    return found


def _chunks(reply: Answer) -> list[Chunk]:
    """Stream chunks: words and punctuation; the last chunk of a cited part carries the citation."""
    chunks: list[Chunk] = []
    for segment in reply.segments:
        tokens = split_tokens(segment.text)
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            chunks.append(Chunk(token, segment.citation if last else None))
    return chunks


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [item for item in raw if "role" in item and "content" in item]


def _request_lines() -> tuple[str, str]:
    rule = request.url_rule.rule if request.url_rule else request.path
    template = rule.replace("<", "{").replace(">", "}")
    return f"{request.method} {request.path}", f"{request.method} {template}"


def _stream(rec: ResponseRec, start: int, disconnect: Any) -> Response:
    st = state()
    after, stall = stream_break(disconnect)
    events = pump(rec.job, st.lock, st.stopping, start=start, disconnect_after=after, stall=stall)
    return Response(events, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


# --- responses ---------------------------------------------------------------------------------


@bp.post("/v1/responses")
def create_response() -> Any:
    """Create a response: background (poll or stream) or foreground (wait or stream)."""
    body = check_body(RESPONSE_CREATE, json_body())
    background = bool(body.get("background"))
    store = body.get("store") is not False
    stream = bool(body.get("stream"))
    if background and not store:
        raise invalid("Background mode requires 'store' to be true.", param="store")
    conversation_ref = body.get("conversation")
    if conversation_ref is not None and body.get("previous_response_id"):
        raise invalid(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    for i, tool in enumerate(body.get("tools") or []):
        if tool["type"] == "file_search" and "vector_store_ids" not in tool:
            raise invalid(
                f"Missing required parameter: 'tools[{i}].vector_store_ids'.",
                param=f"tools[{i}].vector_store_ids",
                code="missing_required_parameter",
            )
    inputs = _input_items(body)
    if not inputs and body.get("input") is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    st = state()
    with st.lock:
        at = now()
        conversation = None
        if conversation_ref is not None:
            cid = conversation_ref if isinstance(conversation_ref, str) else conversation_ref["id"]
            conversation = _conversation(cid)
        history: list[str] = []
        if conversation is not None:
            for item in conversation.items:
                if item.visible(at):
                    obj = item.render(at)
                    if obj.get("type") == "message" and obj.get("role") == "user":
                        history.append(_text_of(obj.get("content", "")))
        elif body.get("previous_response_id"):
            history.append(_response(body["previous_response_id"]).question)
        users = [_text_of(i["content"]) for i in inputs if i.get("role") == "user"]
        question = users[-1] if users else ""
        previous = (history + users[:-1])[-1] if history or users[:-1] else None
        tools = [dict(t) for t in body.get("tools") or []]
        store_ids = [
            vs for t in tools if t["type"] == "file_search" for vs in t["vector_store_ids"]
        ]
        for vs in store_ids:
            if vs not in st.vector_stores:
                raise not_found("vector store", vs, param="tools")
        index, attributes = st.index_for(store_ids)
        if question.strip() and store_ids:
            reply = scripted(question, st.scripts) or answer(question, index, previous, attributes)
        else:
            reply = Answer((Segment(NOT_FOUND),), (), question)
        lines = _request_lines()
        fault = st.faults.take(RUN_KINDS, *lines)
        if fault is not None:
            outcome = FAULT_OUTCOMES[fault.kind]
        else:
            outcome = "failed" if st.draws_failure() else "completed"
        message = (
            "The response expired before it could finish."
            if fault is not None and fault.kind == "run_expired"
            else "The model failed to generate a response."
        )
        response_id = new_id("resp")
        job = Job(
            response_id, at, st.latency, st.options.tokens_per_second, _chunks(reply), outcome
        )
        settings = {
            k: body[k]
            for k in (
                "max_output_tokens",
                "max_tool_calls",
                "parallel_tool_calls",
                "previous_response_id",
                "service_tier",
                "temperature",
                "tool_choice",
                "top_p",
                "truncation",
            )
            if body.get(k) is not None
        }
        input_tokens = word_count(
            body.get("instructions") or "", *history, *users, *(c.text for c in reply.results)
        )
        rec = ResponseRec(
            response_id,
            job,
            body["model"],
            body.get("instructions"),
            [_tool_obj(t) for t in tools],
            body.get("metadata") or {},
            background,
            store,
            "file_search_call.results" in (body.get("include") or []),
            conversation.id if conversation else None,
            question,
            reply,
            input_tokens,
            message,
            settings,
        )
        job.planner = lambda: _plan(rec)
        st.responses[response_id] = rec
        st.jobs[response_id] = job
        if conversation is not None:
            for item in inputs:
                obj = _message_item(item["role"], item["content"])
                conversation.items.append(ConvItem(obj["id"], obj))
            if rec.searches and outcome not in ("failed", "expired"):
                conversation.items.append(ConvItem(rec.fs_id, response=rec))
            if job.token_times:
                conversation.items.append(ConvItem(rec.msg_id, response=rec))
        disconnect = st.faults.take(STREAM_KINDS, *lines) if stream else None
    if stream:
        return _stream(rec, 0, disconnect)
    if not background:
        # A foreground response answers only once it has finished, as OpenAI's does.
        while not st.stopping.is_set():
            with st.lock:
                at = now()
                if job.terminal_time(at) is not None:
                    break
                wait = min(max(job.end_time - at, 0.0), 1.0)
            st.stopping.wait(wait)
    with st.lock:
        # A background response is shown as it was when created (queued), as OpenAI does.
        return response_obj(rec, job.created if background else now())


def _tool_obj(tool: dict[str, Any]) -> dict[str, Any]:
    if tool["type"] != "file_search":
        return tool
    return {
        "type": "file_search",
        "vector_store_ids": tool["vector_store_ids"],
        "filters": tool.get("filters"),
        "max_num_results": tool.get("max_num_results", 20),
        "ranking_options": tool.get("ranking_options")
        or {"ranker": "auto", "score_threshold": 0.0},
    }


@bp.get("/v1/responses/<response_id>")
def get_response(response_id: str) -> Any:
    """Retrieve a response, or with stream=true replay its events after `starting_after`."""
    stream = query_bool(request.args, "stream")
    raw_after = request.args.get("starting_after")
    starting_after = -1
    if raw_after not in (None, ""):
        try:
            starting_after = int(raw_after)
        except ValueError:
            raise invalid(
                f"Invalid 'starting_after': expected an integer, but got '{raw_after}' instead.",
                param="starting_after",
                code="invalid_type",
            ) from None
        if starting_after < -1:
            raise invalid("Invalid 'starting_after': must be >= 0.", param="starting_after")
    st = state()
    with st.lock:
        rec = _response(response_id)
        if not stream:
            return response_obj(rec, now())
        if not rec.background:
            raise invalid(
                "This response cannot be streamed because it was not created with background=true.",
                param="stream",
            )
        disconnect = st.faults.take(STREAM_KINDS, *_request_lines())
    return _stream(rec, starting_after + 1, disconnect)


@bp.post("/v1/responses/<response_id>/cancel")
def cancel_response(response_id: str) -> Any:
    """Cancel a background response; cancelling a cancelled one is a no-op."""
    with state().lock:
        rec = _response(response_id)
        if not rec.background:
            raise invalid(
                "Only responses created with background=true can be cancelled.",
                param="response_id",
            )
        at = now()
        status = rec.job.status(at)
        if status in ("queued", "in_progress"):
            # The stream just ends: OpenAI defines no response.cancelled event.
            rec.job.cancel(at, [])
        elif status != "cancelled":
            raise invalid(f"Cannot cancel a response with status '{status}'.")
        return response_obj(rec, at)


@bp.delete("/v1/responses/<response_id>")
def delete_response(response_id: str) -> Any:
    """Delete a stored response."""
    with state().lock:
        _response(response_id)
        del state().responses[response_id]
    return {"id": response_id, "object": "response", "deleted": True}


# --- conversations -----------------------------------------------------------------------------


@bp.post("/v1/conversations")
def create_conversation() -> Any:
    """Create a conversation, optionally seeded with items."""
    body = check_body(CONVERSATION_CREATE, json_body())
    conversation = Conversation(new_id("conv"), int(now()), body.get("metadata") or {})
    for item in body.get("items") or []:
        if "role" not in item or "content" not in item:
            raise invalid("Only message items can seed a conversation.", param="items")
        obj = _message_item(item["role"], item["content"])
        conversation.items.append(ConvItem(obj["id"], obj))
    with state().lock:
        state().conversations[conversation.id] = conversation
    return conversation.obj()


@bp.get("/v1/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Any:
    """Retrieve a conversation."""
    with state().lock:
        return _conversation(conversation_id).obj()


@bp.post("/v1/conversations/<conversation_id>")
def update_conversation(conversation_id: str) -> Any:
    """Replace a conversation's metadata."""
    body = check_body(
        Obj({"metadata": Metadata()}, required=["metadata"], extra=False), json_body()
    )
    with state().lock:
        conversation = _conversation(conversation_id)
        conversation.metadata = body["metadata"] or {}
        return conversation.obj()


@bp.delete("/v1/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Any:
    """Delete a conversation."""
    with state().lock:
        _conversation(conversation_id)
        del state().conversations[conversation_id]
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@bp.get("/v1/conversations/<conversation_id>/items")
def list_items(conversation_id: str) -> Any:
    """List a conversation's items (newest first unless order=asc)."""
    with state().lock:
        at = now()
        items = [i for i in _conversation(conversation_id).items if i.visible(at)]
        return paginate(items, lambda i: i.id, lambda i: i.render(at), request.args)


@bp.post("/v1/conversations/<conversation_id>/items")
def add_items(conversation_id: str) -> Any:
    """Append message items to a conversation."""
    body = check_body(
        Obj(
            {"items": ListOf(INPUT_ITEM, max_items=20, min_items=1)},
            required=["items"],
            extra=False,
        ),
        json_body(),
    )
    with state().lock:
        conversation = _conversation(conversation_id)
        added = []
        for item in body["items"]:
            if "role" not in item or "content" not in item:
                raise invalid("Only message items can be added.", param="items")
            obj = _message_item(item["role"], item["content"])
            conversation.items.append(ConvItem(obj["id"], obj))
            added.append(obj)
    return {
        "object": "list",
        "data": added,
        "first_id": added[0]["id"],
        "last_id": added[-1]["id"],
        "has_more": False,
    }


@bp.get("/v1/conversations/<conversation_id>/items/<item_id>")
def get_item(conversation_id: str, item_id: str) -> Any:
    """Retrieve one conversation item."""
    with state().lock:
        at = now()
        for item in _conversation(conversation_id).items:
            if item.id == item_id and item.visible(at):
                return item.render(at)
    raise not_found("item", item_id)
