"""Crawl a documentation site, extract its pages as Markdown and sync them to the upstream."""
