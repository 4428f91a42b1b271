-- The last S3 event applied per object, so redelivered or out-of-order notifications
-- (SQS is at-least-once and unordered) never undo a newer change. ``sequencer`` is S3's
-- per-key event order, stored right-padded with zeros to a fixed width so plain text
-- comparison orders it (see pixdex/storage/ingest_events.py).
CREATE TABLE ingest_events (
    workspace   text NOT NULL,
    bucket      text NOT NULL,
    key         text NOT NULL,
    sequencer   text COLLATE "C" NOT NULL,
    version_id  text,
    event       text NOT NULL CHECK (event IN ('created', 'removed')),
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, bucket, key)
);
