-- Bring-your-own vectors (`pixdex vectors import`, POST /v1/datasets/{id}/vectors): an
-- imported row is an image with its vector and no file, so it has no storage key. Every
-- place that reads a file checks for one and says the image has none.
ALTER TABLE images ALTER COLUMN storage_key DROP NOT NULL;
-- An import refuses a name the dataset already has: one index probe per chunk of names.
CREATE INDEX images_dataset_name ON images (dataset_id, name);
-- A named vector whose values came from outside: pixdex never computes it (ingest and
-- reembed refuse the name), and an import never adds to a model pixdex computes.
ALTER TABLE embedding_models ADD COLUMN imported boolean NOT NULL DEFAULT false;
