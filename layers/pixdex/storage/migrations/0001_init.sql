-- Core schema: workspaces > datasets > images, embeddings per (image, model).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE datasets (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);

-- Named vectors: every model that has ever embedded anything is registered here; its
-- HNSW index is created (partial, dimension-specific) when it is registered.
CREATE TABLE embedding_models (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    dim           integer NOT NULL CHECK (dim BETWEEN 1 AND 4000),
    encodes_text  boolean NOT NULL,
    tags          boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dataset_models (
    dataset_id  uuid NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    model       text NOT NULL REFERENCES embedding_models (name),
    PRIMARY KEY (dataset_id, model)
);

CREATE TABLE images (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id         uuid NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    folder             text NOT NULL DEFAULT '/' CHECK (folder LIKE '/%'),
    name               text NOT NULL,
    storage_key        text NOT NULL,
    sha256             text,
    byte_size          bigint,
    width              integer,
    height             integer,
    format             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'indexed', 'failed')),
    error              text,
    user_tags          text[] NOT NULL DEFAULT '{}',
    annotation_classes jsonb NOT NULL DEFAULT '{}',
    batch_id           text,
    annotation_job_id  text,
    split              text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    auto_tags          jsonb NOT NULL DEFAULT '{"objects": {}, "scenes": {}, "attributes": {}}',
    -- "objects:tabby cat", "attributes:dark", ...: a flat, GIN-indexed copy of the
    -- auto-tag names so OR-within-kind / AND-across-kind filters are index lookups.
    tag_keys           text[] NOT NULL DEFAULT '{}',
    UNIQUE (dataset_id, storage_key)
);

CREATE INDEX images_dataset_folder ON images (dataset_id, folder text_pattern_ops);
CREATE INDEX images_dataset_status ON images (dataset_id, status);
CREATE INDEX images_dataset_sha256 ON images (dataset_id, sha256);
CREATE INDEX images_dataset_batch ON images (dataset_id, batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX images_dataset_job ON images (dataset_id, annotation_job_id)
    WHERE annotation_job_id IS NOT NULL;
CREATE INDEX images_dataset_split ON images (dataset_id, split) WHERE split IS NOT NULL;
CREATE INDEX images_user_tags ON images USING gin (user_tags);
CREATE INDEX images_tag_keys ON images USING gin (tag_keys);
CREATE INDEX images_annotation_classes ON images USING gin (annotation_classes);
CREATE INDEX images_metadata ON images USING gin (metadata jsonb_path_ops);

CREATE TABLE image_embeddings (
    image_id    uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model       text NOT NULL REFERENCES embedding_models (name),
    -- Denormalised from images so dataset scoping is checked inside the index scan.
    dataset_id  uuid NOT NULL,
    embedding   halfvec NOT NULL,
    PRIMARY KEY (image_id, model)
);
CREATE INDEX image_embeddings_dataset_model ON image_embeddings (dataset_id, model);
