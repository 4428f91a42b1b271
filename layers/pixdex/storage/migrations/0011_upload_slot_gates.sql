-- An upload slot's own duplicate gate (POST /v1/datasets/{id}/uploads with on_duplicate),
-- applied when its file arrives, maybe hours later and through S3 -> SQS; a slot without a
-- row here passes the dataset's gate, as every other image does.
CREATE TABLE upload_slot_gates (
    image_id      uuid PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    on_duplicate  text NOT NULL CHECK (on_duplicate IN ('allow', 'skip', 'link')),
    level         smallint NOT NULL CHECK (level BETWEEN 0 AND 4)
);
