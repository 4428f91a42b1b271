-- Exact rankings inside a split without a primary-key descent per row. A ranking filtered
-- by split picked the images from their split index, then fetched each vector by a
-- descent into image_embeddings' primary key: one per row, bound by memory latency
-- (5,000 rows: ~22-28 ms of a 1% filter at 1M images). With the split here too, the
-- split's vectors come from one range of the index below and meet the images' side in a
-- full join (docs/benchmarks.md: 12.3 ms with the split's rows spread one in a hundred,
-- 7.5 ms with them side by side, as a vector import writes them).
--
-- The cost: every row with a split is rewritten once here (and goes into its HNSW graphs
-- again, or they are rebuilt: below), and a split edit rewrites the image's vectors.

-- Writers take images then image_embeddings (ingest upserts the image, then its vectors):
-- the same order here, so a write in flight cannot deadlock with the migration. Holding
-- both for the whole migration also keeps a split edit from slipping in between the
-- backfill and the trigger that would have copied it. Searches and writes wait meanwhile.
LOCK TABLE images IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE image_embeddings IN ACCESS EXCLUSIVE MODE;

ALTER TABLE image_embeddings ADD COLUMN split text;

-- Curation's update trigger (0009) would mark every row the backfill rewrites as a new
-- vector (and capture them all twice in its transition tables): it is replaced after.
DROP TRIGGER image_embeddings_curation_update ON image_embeddings;

-- Each rewritten vector goes into its HNSW graphs again: ~2 ms per graph and row on 2
-- vCPUs (457 rows/s at 1M x 768), where building a graph costs ~0.4 ms a row. So when
-- more than a fifth of the vectors change, the graphs are dropped and built again after
-- (same definitions, the memory `storage.vectors` gives a build), else rewritten in place.
DO $$
DECLARE
    graph record;
    graphs text[] := '{}';
    memories int[] := '{}';
    vectors_now float8;
    k int;
BEGIN
    SELECT CASE WHEN c.reltuples < 0 THEN (SELECT count(*) FROM image_embeddings)
                ELSE c.reltuples END
        INTO vectors_now FROM pg_class c WHERE c.oid = 'image_embeddings'::regclass;
    IF (SELECT count(*) FROM images WHERE split IS NOT NULL) * 5 > vectors_now THEN
        FOR graph IN
            SELECT c.relname AS name, pg_get_indexdef(x.indexrelid) AS definition,
                   greatest(c.reltuples, 0) AS rows
            FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
            JOIN pg_am a ON a.oid = c.relam
            WHERE x.indrelid = 'image_embeddings'::regclass AND a.amname = 'hnsw'
        LOOP
            graphs := graphs || graph.definition;
            memories := memories || greatest(64, least(4096, (graph.rows * (400 + 2 * coalesce(
                substring(graph.definition FROM 'halfvec\((\d+)\)')::int, 1024)) * 1.3
                / 1048576)::int));
            EXECUTE format('DROP INDEX %I', graph.name);
        END LOOP;
    END IF;
    UPDATE image_embeddings e SET split = i.split
        FROM images i WHERE i.id = e.image_id AND i.split IS NOT NULL;
    FOR k IN 1 .. coalesce(array_length(graphs, 1), 0) LOOP
        PERFORM set_config('maintenance_work_mem', memories[k] || 'MB', true);
        EXECUTE graphs[k];
    END LOOP;
END $$;

-- A split copied over is not a new vector: only rows whose vector changed need their
-- neighbours recomputed. (A trigger with transition tables cannot name columns, so the
-- update trigger compares the vectors.)
CREATE FUNCTION curation_mark_reembedded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO curation_pending (image_id, model, dataset_id, reason)
    SELECT n.image_id, n.model, n.dataset_id, 'embedded'
    FROM written n
    JOIN previous o ON o.image_id = n.image_id AND o.model = n.model
    JOIN embedding_models m ON m.name = n.model AND m.metric = 'cosine'
    WHERE n.embedding IS DISTINCT FROM o.embedding
    ON CONFLICT (image_id, model) DO UPDATE SET reason = 'embedded';
    RETURN NULL;
END $$;

CREATE TRIGGER image_embeddings_curation_update AFTER UPDATE ON image_embeddings
    REFERENCING OLD TABLE AS previous NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION curation_mark_reembedded();

CREATE INDEX image_embeddings_split ON image_embeddings (dataset_id, model, split)
    WHERE split IS NOT NULL;

-- Kept by triggers, not by every writer: vectors are written by ingest, re-embedding and
-- bulk imports, splits by ingest, imports and edits.
--
-- FOR SHARE: a vector inserted while its image's split is being edited waits for the
-- edit (or the edit for the insert), so neither reads the other's old value; the foreign
-- key's own lock (FOR KEY SHARE) does not conflict with an edit. An image not there (a
-- bulk load with foreign keys off that brings the vectors first) keeps the split given.
CREATE FUNCTION embedding_take_split() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    image_split text;
BEGIN
    SELECT i.split INTO image_split FROM images i WHERE i.id = NEW.image_id FOR SHARE;
    IF FOUND THEN
        NEW.split := image_split;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER image_embeddings_split BEFORE INSERT ON image_embeddings
    FOR EACH ROW EXECUTE FUNCTION embedding_take_split();

CREATE FUNCTION image_split_to_embeddings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_embeddings SET split = NEW.split WHERE image_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER images_split_to_embeddings AFTER UPDATE OF split ON images
    FOR EACH ROW WHEN (OLD.split IS DISTINCT FROM NEW.split)
    EXECUTE FUNCTION image_split_to_embeddings();

-- ALWAYS: a copy must not drift, not even under a bulk load that switches foreign-key
-- checks off with session_replication_role = replica (other triggers do not fire then).
ALTER TABLE image_embeddings ENABLE ALWAYS TRIGGER image_embeddings_split;
ALTER TABLE images ENABLE ALWAYS TRIGGER images_split_to_embeddings;

-- The planner needs the new column's statistics to pick the split's index and size the
-- join to the images.
ANALYZE image_embeddings;
