"""Prompts to conditioning: A1111's attention syntax, embeddings in the token table, chunked encoding."""
