"""pixdex: self-hostable image search (embeddings + auto-tags in PostgreSQL/pgvector)."""

__version__ = "0.1.0"
