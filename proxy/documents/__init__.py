"""Stored pages: the documents table and keeping the upstream vector store in step."""
