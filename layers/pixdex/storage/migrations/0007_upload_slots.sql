-- Upload slots (POST /v1/datasets/{id}/uploads): the row is created, pending, when the
-- client asks for a presigned PUT URL, before any bytes exist. Until the file arrives
-- the row carries the time after which nobody can upload it any more; a row still
-- waiting after that is marked failed rather than keeping its dataset "indexing" forever.
-- NULL for every other row, and cleared when the file arrives.
ALTER TABLE images ADD COLUMN upload_expires_at timestamptz;
CREATE INDEX images_awaiting_upload ON images (upload_expires_at)
    WHERE upload_expires_at IS NOT NULL;
