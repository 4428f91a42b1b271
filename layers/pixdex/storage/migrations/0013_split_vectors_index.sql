-- A split's vectors, in the order an exact ranking inside the split reads them. The heap
-- keeps vectors in arrival order, so a split whose images arrived one by one (or were
-- given their split later) has one heap page per vector: at 1M x 768, a 1% split's
-- ranking read 5,000 pages, p95 21-26 ms against 13-17 ms once `pixdex db optimize`
-- had regrouped them. This btree index holds the vectors themselves (INCLUDE), sorted by
-- (dataset, model, split) whatever their arrival: an index-only scan reads ~1,400 pages,
-- p95 13.35 ms against 12.85 regrouped, side by side (bench/ab_layout.py;
-- docs/benchmarks.md), with no rewrite to schedule. The price: each vector with a split
-- is stored twice.
--
-- A btree entry must be at most 2,704 bytes. The predicate keeps out rows that would not
-- fit: with 2 * dims + the model's and split's names in bytes <= 2,600, the largest entry
-- (8 bytes of header, the two ids, the names with their length bytes and padding, the
-- vector's 8 + 2 per dimension, rounded to 8) is 2,664 bytes. That admits 1,280-d vectors
-- with names up to 40 bytes together, 1,152-d ones with up to 296. The ranking states the
-- same condition when it holds (search_sql.ranking_statement), so that the planner can
-- prove the index applies.
CREATE INDEX image_embeddings_split_vectors ON image_embeddings (dataset_id, model, split)
    INCLUDE (image_id, embedding)
    WHERE split IS NOT NULL
        AND 2 * vector_dims(embedding) + octet_length(model) + octet_length(split) <= 2600;

-- An index-only scan skips the table only on pages the visibility map marks all-visible,
-- which a vacuum does. Autovacuum's default waits for inserts of a fifth of the table
-- (200,000 rows at 1M) before it comes; a hundredth keeps newly ingested vectors read
-- from the index within ~10,000 rows. (Dead rows keep their default: each such vacuum
-- also walks every HNSW graph.)
ALTER TABLE image_embeddings SET (autovacuum_vacuum_insert_scale_factor = 0.01);
