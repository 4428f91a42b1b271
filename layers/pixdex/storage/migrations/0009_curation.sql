-- Dataset curation: the kNN graph near-duplicate clusters, split leakage, outliers and
-- label doubts are read from, kept current as images are indexed and removed.

-- Each image's nearest neighbours (at most PIXDEX_CURATION_NEIGHBOURS) per cosine model,
-- within its dataset. A neighbour found by a later image's query is added to the earlier
-- image's list when it is nearer than that list's worst (then trimmed back to k).
CREATE TABLE image_neighbours (
    image_id      uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model         text NOT NULL,
    neighbour_id  uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    dataset_id    uuid NOT NULL,
    score         real NOT NULL,
    PRIMARY KEY (image_id, model, neighbour_id)
);
CREATE INDEX image_neighbours_neighbour ON image_neighbours (neighbour_id);
-- Duplicates and leakage read the pairs above a level's threshold: a range scan.
CREATE INDEX image_neighbours_dataset_score ON image_neighbours (dataset_id, model, score DESC);

-- Images whose neighbours must be (re)computed. 'embedded': the image got a new or changed
-- vector; 'neighbour': one of its neighbours lost its vector (deleted, failed).
CREATE TABLE curation_pending (
    image_id    uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model       text NOT NULL,
    dataset_id  uuid NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('embedded', 'neighbour')),
    PRIMARY KEY (image_id, model)
);
CREATE INDEX curation_pending_dataset ON curation_pending (dataset_id, model);

-- Triggers, not calls in every writer: embeddings are written by ingest, reembed and bulk
-- imports alike, and images are deleted by many paths (and by cascades).
CREATE FUNCTION curation_mark_embedded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO curation_pending (image_id, model, dataset_id, reason)
    SELECT n.image_id, n.model, n.dataset_id, 'embedded'
    FROM written n JOIN embedding_models m ON m.name = n.model AND m.metric = 'cosine'
    ON CONFLICT (image_id, model) DO UPDATE SET reason = 'embedded';
    RETURN NULL;
END $$;

CREATE TRIGGER image_embeddings_curation_insert AFTER INSERT ON image_embeddings
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION curation_mark_embedded();
CREATE TRIGGER image_embeddings_curation_update AFTER UPDATE ON image_embeddings
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION curation_mark_embedded();

-- A vector gone (a failed re-index; deleted images cascade on their own): its edges go.
CREATE FUNCTION curation_drop_edges() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM image_neighbours n USING gone g
        WHERE n.image_id = g.image_id AND n.model = g.model;
    DELETE FROM image_neighbours n USING gone g
        WHERE n.neighbour_id = g.image_id AND n.model = g.model;
    RETURN NULL;
END $$;

CREATE TRIGGER image_embeddings_curation_delete AFTER DELETE ON image_embeddings
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION curation_drop_edges();

-- An edge gone because its neighbour lost its vector: the image still there needs a
-- replacement neighbour. Edges trimmed or recomputed (the neighbour still has its vector)
-- mark nothing.
CREATE FUNCTION curation_mark_orphaned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO curation_pending (image_id, model, dataset_id, reason)
    SELECT DISTINCT g.image_id, g.model, g.dataset_id, 'neighbour'
    FROM gone g
    WHERE EXISTS (SELECT 1 FROM image_embeddings e JOIN images i ON i.id = e.image_id
                  WHERE e.image_id = g.image_id AND e.model = g.model)
      AND NOT EXISTS (SELECT 1 FROM image_embeddings e JOIN images i ON i.id = e.image_id
                      WHERE e.image_id = g.neighbour_id AND e.model = g.model)
    ON CONFLICT (image_id, model) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER image_neighbours_curation_delete AFTER DELETE ON image_neighbours
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION curation_mark_orphaned();

-- The ingest duplicate gate of a dataset (absent: allow) ...
CREATE TABLE dataset_duplicate_gate (
    dataset_id    uuid PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE,
    on_duplicate  text NOT NULL CHECK (on_duplicate IN ('allow', 'skip', 'link')),
    level         smallint NOT NULL CHECK (level BETWEEN 0 AND 4)
);

-- ... and the relations 'link' records: the image was indexed as a near-duplicate of
-- another one.
CREATE TABLE duplicate_links (
    image_id      uuid PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    duplicate_of  uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    level         smallint NOT NULL CHECK (level BETWEEN 0 AND 4),
    score         real NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX duplicate_links_duplicate_of ON duplicate_links (duplicate_of);
