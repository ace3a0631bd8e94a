"""Files and vector stores (with their files and file batches)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from emulator.errors import invalid, not_found
from emulator.search import terms
from emulator.state import StoredFile, VectorStore, json_body, new_id, now, paginate, state
from emulator.validation import (
    AnyValue,
    Attributes,
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

bp = Blueprint("files", __name__)

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")

VECTOR_STORE_CREATE = Obj(
    {
        "name": Nullable(Str(max_length=256)),
        "description": Nullable(Str(max_length=512)),
        "file_ids": ListOf(Str(), max_items=500),
        "metadata": Metadata(),
        "expires_after": AnyValue(),
        "chunking_strategy": AnyValue(),
    },
    extra=False,
)
VECTOR_STORE_FILE_CREATE = Obj(
    {"file_id": Str(non_empty=True), "attributes": Attributes(), "chunking_strategy": AnyValue()},
    required=["file_id"],
    extra=False,
)
VECTOR_STORE_SEARCH = Obj(
    {
        "query": OneOf(Str(), ListOf(Str(), min_items=1)),
        "rewrite_query": Bool(),
        "max_num_results": Num(integer=True, minimum=1, maximum=50),
        "filters": AnyValue(),
        "ranking_options": AnyValue(),
    },
    required=["query"],
    extra=False,
)
FILE_BATCH_CREATE = Obj(
    {
        "file_ids": ListOf(Str(), max_items=2000),
        "files": ListOf(
            Obj(
                {
                    "file_id": Str(non_empty=True),
                    "attributes": Attributes(),
                    "chunking_strategy": AnyValue(),
                },
                required=["file_id"],
                extra=False,
            ),
            max_items=2000,
        ),
        "attributes": Attributes(),
        "chunking_strategy": AnyValue(),
    },
    extra=False,
)


def _file(file_id: str) -> StoredFile:
    stored = state().files.get(file_id)
    if stored is None:
        raise not_found("file", file_id)
    return stored


def _store(store_id: str) -> VectorStore:
    store = state().vector_stores.get(store_id)
    if store is None:
        raise not_found("vector store", store_id)
    return store


def _counts(files: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "in_progress": 0,
        "completed": len(files),
        "failed": 0,
        "cancelled": 0,
        "total": len(files),
    }


def _store_obj(store: VectorStore) -> dict[str, Any]:
    files = list(store.files.values())
    usage = sum(len(state().files[f["id"]].data) for f in files if f["id"] in state().files)
    return {**store.obj, "file_counts": _counts(files), "usage_bytes": usage}


def _attach(store: VectorStore, file_id: str, attributes: dict[str, Any] | None) -> dict[str, Any]:
    """Add (or re-add) a file to a store; files are indexed at once."""
    stored = _file(file_id)
    obj = {
        "id": file_id,
        "object": "vector_store.file",
        "created_at": int(now()),
        "vector_store_id": store.obj["id"],
        "status": "completed",
        "last_error": None,
        "usage_bytes": len(stored.data),
        "attributes": attributes or {},
        "chunking_strategy": {
            "type": "static",
            "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
        },
    }
    store.files.pop(file_id, None)
    store.files[file_id] = obj
    store.obj["last_active_at"] = int(now())
    state().changed()
    return obj


# --- files -------------------------------------------------------------------------------------


@bp.post("/v1/files")
def create_file() -> Any:
    """Upload a file (multipart: file, purpose)."""
    unknown = set(request.form) - {
        "purpose",
        "expires_after",
        "expires_after[anchor]",
        "expires_after[seconds]",
    }
    if unknown:
        name = sorted(unknown)[0]
        raise invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    upload = request.files.get("file")
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    purpose = request.form.get("purpose")
    if purpose is None:
        raise invalid(
            "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
        )
    Enum(*PURPOSES).check(purpose, "purpose")
    data = upload.read()
    stored = StoredFile(new_id("file"), upload.filename or "upload", purpose, int(now()), data)
    with state().lock:
        state().files[stored.id] = stored
    return stored.obj()


@bp.get("/v1/files")
def list_files() -> Any:
    """List uploaded files."""
    with state().lock:
        files = list(state().files.values())
    return paginate(files, lambda f: f.id, lambda f: f.obj(), request.args)


@bp.get("/v1/files/<file_id>")
def get_file(file_id: str) -> Any:
    """Retrieve a file object."""
    with state().lock:
        return _file(file_id).obj()


@bp.get("/v1/files/<file_id>/content")
def get_file_content(file_id: str) -> Any:
    """The uploaded bytes."""
    with state().lock:
        data = _file(file_id).data
    return data, 200, {"Content-Type": "application/octet-stream"}


@bp.delete("/v1/files/<file_id>")
def delete_file(file_id: str) -> Any:
    """Delete a file; it also leaves every vector store."""
    with state().lock:
        _file(file_id)
        del state().files[file_id]
        for store in state().vector_stores.values():
            store.files.pop(file_id, None)
        state().changed()
    return {"id": file_id, "object": "file", "deleted": True}


# --- vector stores -----------------------------------------------------------------------------


@bp.post("/v1/vector_stores")
def create_vector_store() -> Any:
    """Create a vector store, optionally with files."""
    body = check_body(VECTOR_STORE_CREATE, json_body())
    with state().lock:
        store_id = new_id("vs")
        created = int(now())
        store = VectorStore(
            {
                "id": store_id,
                "object": "vector_store",
                "created_at": created,
                "name": body.get("name") or "",
                "description": body.get("description"),
                "metadata": body.get("metadata") or {},
                "status": "completed",
                "last_active_at": created,
                "expires_after": body.get("expires_after"),
                "expires_at": None,
            }
        )
        for file_id in body.get("file_ids") or []:
            _file(file_id)
        state().vector_stores[store_id] = store
        for file_id in body.get("file_ids") or []:
            _attach(store, file_id, None)
        return _store_obj(store)


@bp.get("/v1/vector_stores")
def list_vector_stores() -> Any:
    """List vector stores."""
    with state().lock:
        stores = list(state().vector_stores.values())
        return paginate(stores, lambda s: s.obj["id"], _store_obj, request.args)


@bp.get("/v1/vector_stores/<vector_store_id>")
def get_vector_store(vector_store_id: str) -> Any:
    """Retrieve a vector store."""
    with state().lock:
        return _store_obj(_store(vector_store_id))


@bp.delete("/v1/vector_stores/<vector_store_id>")
def delete_vector_store(vector_store_id: str) -> Any:
    """Delete a vector store (its files stay)."""
    with state().lock:
        _store(vector_store_id)
        del state().vector_stores[vector_store_id]
        state().changed()
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


@bp.post("/v1/vector_stores/<vector_store_id>/search")
def search_vector_store(vector_store_id: str) -> Any:
    """The store's best passages for a query, ranked as the emulator's file_search ranks them."""
    body = check_body(VECTOR_STORE_SEARCH, json_body())
    queries = [body["query"]] if isinstance(body["query"], str) else body["query"]
    with state().lock:
        _store(vector_store_id)
        index, attributes = state().index_for([vector_store_id])
    words = [t for q in queries for t in terms(q)]
    hits = index.search(words, limit=body.get("max_num_results", 10))
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": h.passage.file_id,
                "filename": h.passage.filename,
                "score": round(h.score, 6),
                "attributes": attributes.get(h.passage.file_id) or {},
                "content": [{"type": "text", "text": h.passage.text}],
            }
            for h in hits
        ],
        "has_more": False,
        "next_page": None,
    }


@bp.post("/v1/vector_stores/<vector_store_id>/files")
def create_vector_store_file(vector_store_id: str) -> Any:
    """Attach a file (with attributes) to a vector store."""
    body = check_body(VECTOR_STORE_FILE_CREATE, json_body())
    with state().lock:
        store = _store(vector_store_id)
        return _attach(store, body["file_id"], body.get("attributes"))


@bp.get("/v1/vector_stores/<vector_store_id>/files")
def list_vector_store_files(vector_store_id: str) -> Any:
    """List a vector store's files (limit, order, after, before, filter)."""
    status = request.args.get("filter")
    if status is not None:
        Enum("in_progress", "completed", "failed", "cancelled").check(status, "filter")
    with state().lock:
        files = list(_store(vector_store_id).files.values())
    if status is not None:
        files = [f for f in files if f["status"] == status]
    return paginate(files, lambda f: f["id"], dict, request.args)


@bp.get("/v1/vector_stores/<vector_store_id>/files/<file_id>")
def get_vector_store_file(vector_store_id: str, file_id: str) -> Any:
    """Retrieve one vector store file."""
    with state().lock:
        obj = _store(vector_store_id).files.get(file_id)
    if obj is None:
        raise not_found("file", file_id)
    return obj


@bp.post("/v1/vector_stores/<vector_store_id>/files/<file_id>")
def update_vector_store_file(vector_store_id: str, file_id: str) -> Any:
    """Replace a vector store file's attributes."""
    body = check_body(
        Obj({"attributes": Attributes()}, required=["attributes"], extra=False), json_body()
    )
    with state().lock:
        obj = _store(vector_store_id).files.get(file_id)
        if obj is None:
            raise not_found("file", file_id)
        obj["attributes"] = body["attributes"] or {}
        state().changed()
        return obj


@bp.delete("/v1/vector_stores/<vector_store_id>/files/<file_id>")
def delete_vector_store_file(vector_store_id: str, file_id: str) -> Any:
    """Detach a file from a vector store (the file itself stays)."""
    with state().lock:
        store = _store(vector_store_id)
        if store.files.pop(file_id, None) is None:
            raise not_found("file", file_id)
        state().changed()
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@bp.post("/v1/vector_stores/<vector_store_id>/file_batches")
def create_file_batch(vector_store_id: str) -> Any:
    """Attach many files at once: `file_ids` (sharing `attributes`) or `files` (each its own)."""
    body = check_body(FILE_BATCH_CREATE, json_body())
    if "file_ids" in body and "files" in body:
        raise invalid("Provide either 'file_ids' or 'files', not both.", param="files")
    if "file_ids" not in body and "files" not in body:
        raise invalid(
            "Missing required parameter: 'file_ids'.", "file_ids", "missing_required_parameter"
        )
    entries = [
        (f["file_id"], f.get("attributes", body.get("attributes"))) for f in body.get("files", [])
    ] or [(fid, body.get("attributes")) for fid in body.get("file_ids", [])]
    if not entries:
        raise invalid("Invalid 'file_ids': empty array.", "file_ids", "empty_array")
    with state().lock:
        store = _store(vector_store_id)
        for file_id, _ in entries:
            _file(file_id)
        for file_id, attributes in entries:
            _attach(store, file_id, attributes)
        batch = {
            "id": new_id("vsfb"),
            "object": "vector_store.files_batch",
            "created_at": int(now()),
            "vector_store_id": vector_store_id,
            "status": "completed",
            "file_counts": _counts([{} for _ in entries]),
            "file_ids": [fid for fid, _ in entries],
        }
        state().batches[batch["id"]] = batch
    return {k: v for k, v in batch.items() if k != "file_ids"}


def _batch(vector_store_id: str, batch_id: str) -> dict[str, Any]:
    batch = state().batches.get(batch_id)
    if batch is None or batch["vector_store_id"] != vector_store_id:
        raise not_found("file batch", batch_id)
    return batch


@bp.get("/v1/vector_stores/<vector_store_id>/file_batches/<batch_id>")
def get_file_batch(vector_store_id: str, batch_id: str) -> Any:
    """Retrieve a file batch (always completed)."""
    with state().lock:
        _store(vector_store_id)
        batch = _batch(vector_store_id, batch_id)
    return {k: v for k, v in batch.items() if k != "file_ids"}


@bp.post("/v1/vector_stores/<vector_store_id>/file_batches/<batch_id>/cancel")
def cancel_file_batch(vector_store_id: str, batch_id: str) -> Any:
    """Cancelling a finished batch changes nothing."""
    return get_file_batch(vector_store_id, batch_id)


@bp.get("/v1/vector_stores/<vector_store_id>/file_batches/<batch_id>/files")
def list_file_batch_files(vector_store_id: str, batch_id: str) -> Any:
    """The batch's files as they are in the store now."""
    with state().lock:
        store = _store(vector_store_id)
        batch = _batch(vector_store_id, batch_id)
        files = [store.files[f] for f in batch["file_ids"] if f in store.files]
    return paginate(files, lambda f: f["id"], dict, request.args)
