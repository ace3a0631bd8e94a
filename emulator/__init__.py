"""A local OpenAI-compatible server (Assistants v2 and Responses subsets) for offline use."""
