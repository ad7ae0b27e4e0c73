"""The SQLite schema of an embedded index (its format version is in rag/index/base.py).

Format 1 also held SQLite FTS5 keyword tables; the in-memory BM25 index replaced them, and
the first writer to open a format-1 index drops them (``UPGRADE``).
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    document_id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    author TEXT,
    published_date TEXT,
    published_at TEXT,
    source TEXT NOT NULL,
    domain TEXT NOT NULL,
    summary TEXT,
    highlights TEXT,
    category TEXT,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    origin TEXT,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS document_authors(
    document_id TEXT NOT NULL REFERENCES documents(document_id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE
);
CREATE INDEX IF NOT EXISTS document_authors_name ON document_authors(name);
CREATE INDEX IF NOT EXISTS document_authors_doc ON document_authors(document_id);
CREATE INDEX IF NOT EXISTS documents_published ON documents(published_date);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL REFERENCES documents(document_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    embed_hash TEXT NOT NULL,
    generation INTEGER NOT NULL,
    UNIQUE(document_id, ordinal)
);
CREATE INDEX IF NOT EXISTS chunks_generation ON chunks(generation);
CREATE TABLE IF NOT EXISTS embeddings(hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones(chunk_id INTEGER NOT NULL, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_generation ON tombstones(generation);
CREATE TABLE IF NOT EXISTS sentences(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL REFERENCES documents(document_id) ON DELETE CASCADE,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(document_id);
"""
UPGRADE = """
DROP TABLE IF EXISTS chunks_fts;
DROP TABLE IF EXISTS sentences_fts;
"""
