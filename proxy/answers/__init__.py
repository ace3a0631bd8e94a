"""The domain: questions, answer jobs, the worker that runs them, events and limits."""
