"""The upstream adapters: the only package that imports openai."""
