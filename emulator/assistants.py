"""Assistants API v2: assistants, threads, messages and runs (polled or streamed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request

from emulator.errors import invalid, not_found
from emulator.faults import RUN_KINDS, STREAM_KINDS, stream_break
from emulator.search import (
    NOT_FOUND,
    Answer,
    Citation,
    Segment,
    answer,
    scripted,
    split_tokens,
)
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
)

bp = Blueprint("assistants", __name__)

FAULT_OUTCOMES = {
    "run_failed": "failed",
    "run_expired": "expired",
    "run_incomplete": "incomplete",
    "run_never_finishes": "never",
}

TOOLS = ListOf(
    Obj(
        {
            "type": Enum("code_interpreter", "file_search", "function"),
            "file_search": AnyValue(),
            "function": AnyValue(),
        },
        required=["type"],
        extra=False,
    ),
    max_items=128,
)
TOOL_RESOURCES = Nullable(
    Obj(
        {
            "file_search": Nullable(
                Obj(
                    {"vector_store_ids": ListOf(Str(), max_items=1), "vector_stores": AnyValue()},
                    extra=False,
                )
            ),
            "code_interpreter": Nullable(Obj({"file_ids": ListOf(Str())}, extra=False)),
        },
        extra=False,
    )
)
REASONING_EFFORT = Nullable(Enum("none", "minimal", "low", "medium", "high", "xhigh"))
ASSISTANT_FIELDS = {
    "model": Str(non_empty=True),
    "name": Nullable(Str(max_length=256)),
    "description": Nullable(Str(max_length=512)),
    "instructions": Nullable(Str(max_length=256000)),
    "metadata": Metadata(),
    "reasoning_effort": REASONING_EFFORT,
    "response_format": AnyValue(),
    "temperature": Nullable(Num(minimum=0, maximum=2)),
    "top_p": Nullable(Num(minimum=0, maximum=1)),
    "tool_resources": TOOL_RESOURCES,
    "tools": TOOLS,
}
ASSISTANT_CREATE = Obj(ASSISTANT_FIELDS, required=["model"], extra=False)
ASSISTANT_UPDATE = Obj(ASSISTANT_FIELDS, extra=False)
CONTENT = OneOf(
    Str(),
    ListOf(
        Obj(
            {
                "type": Enum("text", "image_file", "image_url"),
                "text": Str(),
                "image_file": AnyValue(),
                "image_url": AnyValue(),
            },
            required=["type"],
            extra=False,
        ),
        min_items=1,
    ),
    expected="a string or an array",
)
MESSAGE_CREATE = Obj(
    {
        "role": Enum("user", "assistant"),
        "content": CONTENT,
        "attachments": Nullable(ListOf(AnyValue())),
        "metadata": Metadata(),
    },
    required=["role", "content"],
    extra=False,
)
THREAD_FIELDS = {
    "messages": ListOf(MESSAGE_CREATE, max_items=32),
    "metadata": Metadata(),
    "tool_resources": TOOL_RESOURCES,
}
THREAD_CREATE = Obj(THREAD_FIELDS, extra=False)
RUN_FIELDS = {
    "assistant_id": Str(non_empty=True),
    "instructions": Nullable(Str(max_length=256000)),
    "max_completion_tokens": Nullable(Num(integer=True, minimum=16)),
    "max_prompt_tokens": Nullable(Num(integer=True, minimum=256)),
    "metadata": Metadata(),
    "model": Nullable(Str()),
    "parallel_tool_calls": Bool(),
    "response_format": AnyValue(),
    "stream": Nullable(Bool()),
    "temperature": Nullable(Num(minimum=0, maximum=2)),
    "tool_choice": AnyValue(),
    "tools": Nullable(TOOLS),
    "top_p": Nullable(Num(minimum=0, maximum=1)),
    "truncation_strategy": AnyValue(),
}
RUN_CREATE = Obj(
    {
        **RUN_FIELDS,
        "additional_instructions": Nullable(Str()),
        "additional_messages": Nullable(ListOf(MESSAGE_CREATE, max_items=32)),
        "reasoning_effort": REASONING_EFFORT,
    },
    required=["assistant_id"],
    extra=False,
)
CREATE_AND_RUN = Obj(
    {
        **RUN_FIELDS,
        "thread": Obj(THREAD_FIELDS, extra=False),
        "tool_resources": TOOL_RESOURCES,
    },
    required=["assistant_id"],
    extra=False,
)


@dataclass
class Message:
    """A thread message; an assistant message of a run takes its text from the run's job."""

    id: str
    thread_id: str
    role: str
    created: float
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    attachments: list[Any] = field(default_factory=list)
    assistant_id: str | None = None
    run_id: str | None = None
    job: Job | None = None

    def visible(self, at: float) -> bool:
        """Whether the message exists yet (a run's message appears with its first token)."""
        if self.job is None:
            return True
        return bool(self.job.token_times) and self.job.token_times[0] <= min(at, self.job.cut)


@dataclass
class Thread:
    """A thread: its messages in order and its runs in order."""

    id: str
    created_at: int
    metadata: dict[str, Any]
    tool_resources: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    def obj(self) -> dict[str, Any]:
        """The OpenAI thread object."""
        return {
            "id": self.id,
            "object": "thread",
            "created_at": self.created_at,
            "metadata": self.metadata,
            "tool_resources": self.tool_resources,
        }


@dataclass
class Run:
    """A run and the settings it was started with."""

    id: str
    thread_id: str
    assistant_id: str
    model: str
    instructions: str
    tools: list[Any]
    metadata: dict[str, Any]
    job: Job
    prompt_tokens: int
    settings: dict[str, Any]
    message: Message | None = None
    results: tuple[Citation, ...] = ()  # what the run's file search found, best first
    step_content: bool = False  # created with include[]: its streamed steps carry result text


# --- rendering ---------------------------------------------------------------------------------


def _content(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": text, "annotations": []}}]


def message_obj(m: Message, at: float) -> dict[str, Any]:
    """The OpenAI message object as of `at`."""
    obj: dict[str, Any] = {
        "id": m.id,
        "object": "thread.message",
        "created_at": int(m.created),
        "thread_id": m.thread_id,
        "role": m.role,
        "content": _content(m.text),
        "assistant_id": m.assistant_id,
        "run_id": m.run_id,
        "attachments": m.attachments,
        "metadata": m.metadata,
        "status": "completed",
        "completed_at": int(m.created),
        "incomplete_at": None,
        "incomplete_details": None,
    }
    if m.job is None:
        return obj
    job = m.job
    text = ""
    notes = []
    for chunk in job.chunks[: job.emitted(at)]:
        if chunk.citation is not None:
            notes.append(_annotation(chunk, len(text)))
        text += chunk.text
    obj["content"] = [{"type": "text", "text": {"value": text, "annotations": notes}}]
    status = job.status(at)
    ended = job.terminal_time(at)
    if status == "completed":
        obj["completed_at"] = int(ended or at)
    elif ended is not None:
        reason = {"cancelled": "run_cancelled", "incomplete": "max_tokens"}.get(
            status, "run_failed"
        )
        obj.update(status="incomplete", completed_at=None, incomplete_at=int(ended))
        obj["incomplete_details"] = {"reason": reason}
    else:
        obj.update(status="in_progress", completed_at=None)
    return obj


def _annotation(chunk: Chunk, start: int) -> dict[str, Any]:
    assert chunk.citation is not None
    return {
        "type": "file_citation",
        "text": chunk.text,
        "start_index": start,
        "end_index": start + len(chunk.text),
        "file_citation": {"file_id": chunk.citation.file_id},
    }


def run_obj(run: Run, at: float, status: str | None = None) -> dict[str, Any]:
    """The OpenAI run object as of `at` (optionally showing another status, e.g. cancelling)."""
    job = run.job
    current = job.status(at)
    ended = job.terminal_time(at)
    obj: dict[str, Any] = {
        "id": run.id,
        "object": "thread.run",
        "created_at": int(job.created),
        "assistant_id": run.assistant_id,
        "thread_id": run.thread_id,
        "status": status or current,
        "started_at": int(job.start_at) if at >= job.start_at and current != "queued" else None,
        "expires_at": int(job.created) + 600 if ended is None else None,
        "cancelled_at": int(ended) if current == "cancelled" and ended else None,
        "failed_at": int(ended) if current == "failed" and ended else None,
        "completed_at": int(ended) if current == "completed" and ended else None,
        "required_action": None,
        "last_error": None,
        "model": run.model,
        "instructions": run.instructions,
        "tools": run.tools,
        "metadata": run.metadata,
        "incomplete_details": None,
        "usage": None,
        "temperature": run.settings.get("temperature", 1.0),
        "top_p": run.settings.get("top_p", 1.0),
        "max_prompt_tokens": run.settings.get("max_prompt_tokens"),
        "max_completion_tokens": run.settings.get("max_completion_tokens"),
        "truncation_strategy": run.settings.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "response_format": run.settings.get("response_format") or "auto",
        "tool_choice": run.settings.get("tool_choice") or "auto",
        "parallel_tool_calls": run.settings.get("parallel_tool_calls", True),
        "reasoning_effort": run.settings.get("reasoning_effort"),
    }
    if current == "failed":
        obj["last_error"] = {"code": "server_error", "message": "Sorry, something went wrong."}
    elif current == "incomplete":
        obj["incomplete_details"] = {"reason": "max_completion_tokens"}
    if ended is not None:
        completion = job.emitted(at)
        obj["usage"] = {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": run.prompt_tokens + completion,
        }
    return obj


RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
RANKING = {"ranker": "default_2024_08_21", "score_threshold": 0.0}


def _search_details(run: Run, done: bool, content: bool) -> dict[str, Any]:
    """A file search step's details: once done, its ranked results (their text if asked for)."""
    search: dict[str, Any] = {}
    if done:
        results = []
        for hit in run.results:
            result: dict[str, Any] = {
                "file_id": hit.file_id,
                "file_name": hit.filename,
                "score": hit.score,
            }
            if content:
                result["content"] = [{"type": "text", "text": hit.text}]
            results.append(result)
        search = {"ranking_options": dict(RANKING), "results": results}
    call = {"id": f"call_{run.id[4:]}", "type": "file_search", "file_search": search}
    return {"type": "tool_calls", "tool_calls": [call]}


def step_obj(
    run: Run,
    kind: str,
    created: float,
    ended: float | None = None,
    *,
    status: str | None = None,
    content: bool = False,
) -> dict[str, Any]:
    """A run step: the file search ("search") or the writing of the answer ("answer")."""
    if kind == "search":
        details = _search_details(run, ended is not None and status is None, content)
    else:
        message_id = run.message.id if run.message is not None else ""
        details = {"type": "message_creation", "message_creation": {"message_id": message_id}}
    status = status or ("completed" if ended is not None else "in_progress")
    return {
        "id": f"step_{kind}_{run.id[4:]}",
        "object": "thread.run.step",
        "created_at": int(created),
        "assistant_id": run.assistant_id,
        "thread_id": run.thread_id,
        "run_id": run.id,
        "type": details["type"],
        "status": status,
        "step_details": details,
        "last_error": None,
        "expired_at": int(ended) if status == "expired" and ended is not None else None,
        "cancelled_at": int(ended) if status == "cancelled" and ended is not None else None,
        "failed_at": int(ended) if status == "failed" and ended is not None else None,
        "completed_at": int(ended) if status == "completed" and ended is not None else None,
        "metadata": {},
        "usage": None,
    }


def run_steps(run: Run, at: float, content: bool) -> list[dict[str, Any]]:
    """The run's steps as of `at`, oldest first, as the run-steps endpoints show them."""
    job = run.job
    steps: list[dict[str, Any]] = []
    ended = job.terminal_time(at)
    outcome = job.status(at)
    # A step cut short ends as its run did; a run step knows no "incomplete".
    cut_short = {"cancelled": "cancelled", "expired": "expired"}.get(outcome, "failed")
    first = job.first_token_time(at)
    if any(t.get("type") == "file_search" for t in run.tools) and at >= job.start_at:
        if ended is not None and job.outcome in ("failed", "expired") and first is None:
            search_end: float | None = ended
            status: str | None = cut_short
        elif first is not None:
            search_end, status = first, None
        elif ended is not None:
            search_end, status = ended, cut_short
        else:
            search_end, status = None, None
        steps.append(
            step_obj(run, "search", job.start_at, search_end, status=status, content=content)
        )
    if run.message is not None and first is not None:
        if ended is None:
            steps.append(step_obj(run, "answer", first))
        elif outcome == "completed":
            steps.append(step_obj(run, "answer", first, ended))
        else:
            steps.append(step_obj(run, "answer", first, ended, status=cut_short))
    return steps


def _wants_content() -> bool:
    """Whether the request's include[] asks for the file search results' text (400 on others)."""
    asked = request.args.getlist("include[]") + request.args.getlist("include")
    for value in asked:
        if value != RESULT_CONTENT:
            raise invalid(
                f"Invalid value: '{value}'. Supported values are: '{RESULT_CONTENT}'.",
                param="include[]",
                code="invalid_value",
            )
    return bool(asked)


def _plan(run: Run, thread: Thread | None) -> list[Event]:
    """Every event a stream of this run will carry, each at its time."""
    job = run.job
    c = job.created
    events = []
    if thread is not None:
        events.append(Event(c, "thread.created", thread.obj()))
    events.append(Event(c, "thread.run.created", run_obj(run, c)))
    events.append(Event(c, "thread.run.queued", run_obj(run, c)))
    events.append(Event(job.start_at, "thread.run.in_progress", run_obj(run, job.start_at)))
    m = run.message
    searched = any(t.get("type") == "file_search" for t in run.tools)
    if searched:  # as OpenAI does, the search is a step of its own that ends before the answer
        search = step_obj(run, "search", job.start_at)
        events.append(Event(job.start_at, "thread.run.step.created", search))
        events.append(Event(job.start_at, "thread.run.step.in_progress", search))
    if m is not None and job.token_times:
        t0 = job.token_times[0]
        if searched:
            done = step_obj(run, "search", job.start_at, ended=t0, content=run.step_content)
            events.append(Event(t0, "thread.run.step.completed", done))
        writing = step_obj(run, "answer", t0)
        events.append(Event(t0, "thread.run.step.created", writing))
        events.append(Event(t0, "thread.run.step.in_progress", writing))
        opened = {**message_obj(m, t0), "content": [], "status": "in_progress"}
        opened["completed_at"] = None
        events.append(Event(t0, "thread.message.created", opened))
        events.append(Event(t0, "thread.message.in_progress", opened))
        text_length = 0
        notes = 0
        for i, chunk in enumerate(job.chunks[: job.limit]):
            delta: dict[str, Any] = {"value": chunk.text}
            if chunk.citation is not None:
                delta["annotations"] = [{"index": notes, **_annotation(chunk, text_length)}]
                notes += 1
            text_length += len(chunk.text)
            body = {"index": 0, "type": "text", "text": delta}
            events.append(
                Event(
                    job.token_times[i],
                    "thread.message.delta",
                    {"id": m.id, "object": "thread.message.delta", "delta": {"content": [body]}},
                )
            )
        end = job.end_time
        if job.outcome == "completed":
            events.append(Event(end, "thread.message.completed", message_obj(m, end)))
            written = step_obj(run, "answer", t0, ended=end)
            events.append(Event(end, "thread.run.step.completed", written))
        elif job.outcome == "incomplete":
            events.append(Event(end, "thread.message.incomplete", message_obj(m, end)))
    if job.outcome != "never":
        end = job.end_time
        events.append(Event(end, f"thread.run.{job.outcome}", run_obj(run, end)))
        events.append(Event(end, "done", "[DONE]"))
    return events


def _cancel_tail(run: Run, at: float) -> list[Event]:
    """The events a stream ends with when the run is cancelled at `at`."""
    events = []
    if run.message is not None and run.message.visible(at):
        events.append(Event(at, "thread.message.incomplete", message_obj(run.message, at)))
    events.append(Event(at, "thread.run.cancelled", run_obj(run, at)))
    events.append(Event(at, "done", "[DONE]"))
    return events


# --- helpers -----------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Message text from a string or a list of content parts."""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


def _assistant(assistant_id: str) -> dict[str, Any]:
    found = state().assistants.get(assistant_id)
    if found is None:
        raise not_found("assistant", assistant_id)
    return found


def _thread(thread_id: str) -> Thread:
    found = state().threads.get(thread_id)
    if found is None:
        raise not_found("thread", thread_id)
    return found


def _run(thread_id: str, run_id: str) -> Run:
    _thread(thread_id)
    found = state().runs.get(run_id)
    if found is None or found.thread_id != thread_id:
        raise not_found("run", run_id)
    return found


def _new_thread(spec: dict[str, Any]) -> Thread:
    thread = Thread(
        new_id("thread"),
        int(now()),
        spec.get("metadata") or {},
        spec.get("tool_resources") or {},
    )
    _add_messages(thread, spec.get("messages") or [])
    state().threads[thread.id] = thread
    return thread


def _add_messages(thread: Thread, messages: list[dict[str, Any]]) -> list[Message]:
    added = []
    for spec in messages:
        m = Message(
            new_id("msg"),
            thread.id,
            spec["role"],
            now(),
            _text_of(spec["content"]),
            spec.get("metadata") or {},
            spec.get("attachments") or [],
        )
        thread.messages.append(m)
        added.append(m)
    return added


def _ensure_idle(thread: Thread) -> None:
    """OpenAI refuses new messages and runs while a run of the thread is active."""
    at = now()
    for run in thread.runs:
        if run.job.is_active(at):
            raise invalid(f"Thread {thread.id} already has an active run {run.id}.")


def _store_ids(assistant: dict[str, Any], thread: Thread, tools: list[Any]) -> list[str]:
    if not any(t.get("type") == "file_search" for t in tools):
        return []
    ids = []
    for resources in (assistant.get("tool_resources") or {}, thread.tool_resources or {}):
        ids.extend((resources.get("file_search") or {}).get("vector_store_ids") or [])
    return ids


def _chunks(reply: Answer) -> list[Chunk]:
    """Stream chunks: words and punctuation, and a 【n:m†file】 marker after each cited part."""
    chunks: list[Chunk] = []
    for segment in reply.segments:
        chunks.extend(Chunk(t) for t in split_tokens(segment.text))
        if segment.citation is not None:
            n = reply.results.index(segment.citation)
            marker = f"【4:{n}†{segment.citation.filename}】"
            chunks.append(Chunk(marker, segment.citation))
    return chunks


def _start_run(
    thread: Thread, body: dict[str, Any], stream: bool, new_thread: bool
) -> tuple[Run, Any]:
    """Create a run (under the lock) and decide its outcome; returns it and any stream fault."""
    st = state()
    assistant = _assistant(body["assistant_id"])
    tools = body.get("tools") or assistant["tools"]
    instructions = body.get("instructions") or assistant.get("instructions") or ""
    if body.get("additional_instructions"):
        instructions = f"{instructions}\n\n{body['additional_instructions']}".strip()
    at = now()
    users = [m for m in thread.messages if m.role == "user" and m.visible(at)]
    question = users[-1].text if users else ""
    previous = users[-2].text if len(users) > 1 else None
    index, attributes = st.index_for(_store_ids(assistant, thread, tools))
    if question.strip():
        reply = scripted(question, st.scripts) or answer(question, index, previous, attributes)
    else:
        reply = Answer((Segment(NOT_FOUND),))
    # Checked before a fault is taken: a refused request must leave the queued faults alone.
    step_content = _wants_content()
    lines = _request_lines()
    fault = st.faults.take(RUN_KINDS, *lines)
    if fault is not None:
        outcome = FAULT_OUTCOMES[fault.kind]
    else:
        outcome = "failed" if st.draws_failure() else "completed"
    run_id = new_id("run")
    job = Job(run_id, at, st.latency, st.options.tokens_per_second, _chunks(reply), outcome)
    history = " ".join(m.text for m in thread.messages if m.job is None)
    passages = " ".join(c.text for c in reply.results)
    settings = {
        k: body[k]
        for k in (
            "temperature",
            "top_p",
            "max_prompt_tokens",
            "max_completion_tokens",
            "truncation_strategy",
            "response_format",
            "tool_choice",
            "parallel_tool_calls",
            "reasoning_effort",
        )
        if body.get(k) is not None
    }
    run = Run(
        run_id,
        thread.id,
        assistant["id"],
        body.get("model") or assistant["model"],
        instructions,
        tools,
        body.get("metadata") or {},
        job,
        word_count(instructions, history, passages),
        settings,
        results=reply.results if _store_ids(assistant, thread, tools) else (),
        step_content=step_content,
    )
    if job.token_times:
        run.message = Message(
            new_id("msg"),
            thread.id,
            "assistant",
            job.token_times[0],
            assistant_id=assistant["id"],
            run_id=run_id,
            job=job,
        )
        thread.messages.append(run.message)
    created_thread = thread if new_thread else None
    job.planner = lambda: _plan(run, created_thread)
    thread.runs.append(run)
    st.runs[run_id] = run
    st.jobs[run_id] = job
    disconnect = st.faults.take(STREAM_KINDS, *lines) if stream else None
    return run, disconnect


def _request_lines() -> tuple[str, str]:
    """The request as faults match it: the real path and its template."""
    rule = request.url_rule.rule if request.url_rule else request.path
    template = rule.replace("<", "{").replace(">", "}")
    return f"{request.method} {request.path}", f"{request.method} {template}"


def _answer_run(run: Run, stream: bool, disconnect: Any) -> Any:
    st = state()
    if not stream:
        with st.lock:
            # The new run as it was when created, as OpenAI answers.
            return run_obj(run, run.job.created)
    after, stall = stream_break(disconnect)
    events = pump(run.job, st.lock, st.stopping, disconnect_after=after, stall=stall)
    return Response(events, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


# --- assistants --------------------------------------------------------------------------------


def _assistant_obj(body: dict[str, Any], assistant_id: str, created: int) -> dict[str, Any]:
    return {
        "id": assistant_id,
        "object": "assistant",
        "created_at": created,
        "name": body.get("name"),
        "description": body.get("description"),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "response_format": body.get("response_format") or "auto",
        "reasoning_effort": body.get("reasoning_effort"),
    }


@bp.post("/v1/assistants")
def create_assistant() -> Any:
    """Create an assistant."""
    body = check_body(ASSISTANT_CREATE, json_body())
    obj = _assistant_obj(body, new_id("asst"), int(now()))
    with state().lock:
        state().assistants[obj["id"]] = obj
    return obj


@bp.get("/v1/assistants")
def list_assistants() -> Any:
    """List assistants."""
    with state().lock:
        items = list(state().assistants.values())
    return paginate(items, lambda a: a["id"], dict, request.args)


@bp.get("/v1/assistants/<assistant_id>")
def get_assistant(assistant_id: str) -> Any:
    """Retrieve an assistant."""
    with state().lock:
        return dict(_assistant(assistant_id))


@bp.post("/v1/assistants/<assistant_id>")
def update_assistant(assistant_id: str) -> Any:
    """Change an assistant's fields."""
    body = check_body(ASSISTANT_UPDATE, json_body())
    with state().lock:
        current = _assistant(assistant_id)
        merged = {**current, **{k: v for k, v in body.items()}}
        if merged.get("model") in (None, ""):
            merged["model"] = current["model"]
        obj = _assistant_obj(merged, assistant_id, current["created_at"])
        state().assistants[assistant_id] = obj
        return obj


@bp.delete("/v1/assistants/<assistant_id>")
def delete_assistant(assistant_id: str) -> Any:
    """Delete an assistant."""
    with state().lock:
        _assistant(assistant_id)
        del state().assistants[assistant_id]
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}


# --- threads and messages ----------------------------------------------------------------------


@bp.post("/v1/threads")
def create_thread() -> Any:
    """Create a thread, optionally with messages."""
    body = check_body(THREAD_CREATE, json_body())
    with state().lock:
        return _new_thread(body).obj()


@bp.get("/v1/threads/<thread_id>")
def get_thread(thread_id: str) -> Any:
    """Retrieve a thread."""
    with state().lock:
        return _thread(thread_id).obj()


@bp.post("/v1/threads/<thread_id>")
def update_thread(thread_id: str) -> Any:
    """Change a thread's metadata or tool resources."""
    body = check_body(
        Obj({"metadata": Metadata(), "tool_resources": TOOL_RESOURCES}, extra=False), json_body()
    )
    with state().lock:
        thread = _thread(thread_id)
        if "metadata" in body:
            thread.metadata = body["metadata"] or {}
        if "tool_resources" in body:
            thread.tool_resources = body["tool_resources"] or {}
        return thread.obj()


@bp.delete("/v1/threads/<thread_id>")
def delete_thread(thread_id: str) -> Any:
    """Delete a thread with its messages and runs."""
    with state().lock:
        thread = _thread(thread_id)
        for run in thread.runs:
            state().runs.pop(run.id, None)
        del state().threads[thread_id]
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}


@bp.post("/v1/threads/<thread_id>/messages")
def create_message(thread_id: str) -> Any:
    """Add a message to a thread (not while a run is active)."""
    body = check_body(MESSAGE_CREATE, json_body())
    with state().lock:
        thread = _thread(thread_id)
        _ensure_idle(thread)
        (m,) = _add_messages(thread, [body])
        return message_obj(m, now())


@bp.get("/v1/threads/<thread_id>/messages")
def list_messages(thread_id: str) -> Any:
    """List a thread's messages (order, limit, after, before, run_id)."""
    run_id = request.args.get("run_id")
    with state().lock:
        at = now()
        thread = _thread(thread_id)
        items = [
            m for m in thread.messages if m.visible(at) and (run_id is None or m.run_id == run_id)
        ]
        return paginate(items, lambda m: m.id, lambda m: message_obj(m, at), request.args)


@bp.get("/v1/threads/<thread_id>/messages/<message_id>")
def get_message(thread_id: str, message_id: str) -> Any:
    """Retrieve one message."""
    with state().lock:
        at = now()
        for m in _thread(thread_id).messages:
            if m.id == message_id and m.visible(at):
                return message_obj(m, at)
    raise not_found("message", message_id)


# --- runs --------------------------------------------------------------------------------------


@bp.post("/v1/threads/runs")
def create_thread_and_run() -> Any:
    """Create a thread with its messages and start a run on it."""
    body = check_body(CREATE_AND_RUN, json_body())
    stream = bool(body.get("stream"))
    with state().lock:
        _assistant(body["assistant_id"])
        spec = dict(body.get("thread") or {})
        if body.get("tool_resources") and not spec.get("tool_resources"):
            spec["tool_resources"] = body["tool_resources"]
        thread = _new_thread(spec)
        run, disconnect = _start_run(thread, body, stream, new_thread=True)
    return _answer_run(run, stream, disconnect)


@bp.post("/v1/threads/<thread_id>/runs")
def create_run(thread_id: str) -> Any:
    """Start a run on a thread, after adding any additional messages."""
    body = check_body(RUN_CREATE, json_body())
    stream = bool(body.get("stream"))
    with state().lock:
        thread = _thread(thread_id)
        _assistant(body["assistant_id"])
        _ensure_idle(thread)
        _add_messages(thread, body.get("additional_messages") or [])
        run, disconnect = _start_run(thread, body, stream, new_thread=False)
    return _answer_run(run, stream, disconnect)


@bp.get("/v1/threads/<thread_id>/runs")
def list_runs(thread_id: str) -> Any:
    """List a thread's runs."""
    with state().lock:
        at = now()
        runs = list(_thread(thread_id).runs)
        return paginate(runs, lambda r: r.id, lambda r: run_obj(r, at), request.args)


@bp.get("/v1/threads/<thread_id>/runs/<run_id>")
def get_run(thread_id: str, run_id: str) -> Any:
    """Retrieve a run; its status follows from the time since it was created."""
    with state().lock:
        return run_obj(_run(thread_id, run_id), now())


@bp.post("/v1/threads/<thread_id>/runs/<run_id>")
def update_run(thread_id: str, run_id: str) -> Any:
    """Change a run's metadata."""
    body = check_body(Obj({"metadata": Metadata()}, extra=False), json_body())
    with state().lock:
        run = _run(thread_id, run_id)
        run.metadata = body.get("metadata") or {}
        return run_obj(run, now())


@bp.post("/v1/threads/<thread_id>/runs/<run_id>/cancel")
def cancel_run(thread_id: str, run_id: str) -> Any:
    """Cancel a queued or running run; its message keeps the text written so far."""
    with state().lock:
        run = _run(thread_id, run_id)
        at = now()
        status = run.job.status(at)
        if status not in ("queued", "in_progress"):
            raise invalid(f"Cannot cancel run with status '{status}'.")
        run.job.cancel(at, [])
        run.job.tail = _cancel_tail(run, at)
        return run_obj(run, at, status="cancelling")


@bp.get("/v1/threads/<thread_id>/runs/<run_id>/steps")
def list_run_steps(thread_id: str, run_id: str) -> Any:
    """List a run's steps; include[] asks for the text of the file search results."""
    content = _wants_content()
    with state().lock:
        at = now()
        steps = run_steps(_run(thread_id, run_id), at, content)
        return paginate(steps, lambda s: s["id"], dict, request.args)


@bp.get("/v1/threads/<thread_id>/runs/<run_id>/steps/<step_id>")
def get_run_step(thread_id: str, run_id: str, step_id: str) -> Any:
    """Retrieve one run step (include[] as for the list)."""
    content = _wants_content()
    with state().lock:
        for step in run_steps(_run(thread_id, run_id), now(), content):
            if step["id"] == step_id:
                return step
    raise not_found("run step", step_id)
