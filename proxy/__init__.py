"""docschat's proxy: the Flask service between the docs widget and the upstream assistant.

Layers, each importing only those below it: `cli` (commands) over `web` (the HTTP edge) over
`services` (one process's wiring) over `answers` (the domain) and `documents` (stored pages), over
`storage` (database) and `upstream` (the OpenAI adapters). `config`, `logs` and `metrics` serve all.
"""
