-- A split's vectors, in the order an exact ranking inside the split reads them. The heap
-- keeps vectors in arrival order, so a split whose images arrived one by one (or were
-- given their split later) has one heap page per vector: at 1M x 768, a 1% split's
-- ranking read 5,000 pages, p95 21-26 ms against 13-17 ms once `pixdex db optimize`
-- had regrouped them. This btree index holds the vectors themselves (INCLUDE), sorted by
-- (dataset, model, split) whatever their arrival: an index-only scan reads ~1,250 pages,
-- p95 13.9 ms in the same interleaved benchmark (bench/ab_layout.py; docs/benchmarks.md),
-- with no rewrite to schedule. The price: each vector with a split is stored twice.
--
-- A btree entry must stay under 2,704 bytes: 8 bytes of header, the dataset and image
-- ids (32), the model's and split's names with their length bytes (up to 4 each),
-- alignment (up to 7) and the vector (8 + 2 per dimension). The predicate keeps out
-- rows that would not fit (2 * dims + names <= 2,600: 1,280-d vectors with short names,
-- any names up to ~1,150 dimensions); the ranking states the same condition when it
-- holds (search_sql.ranking_statement), so the planner can prove the index applies.
CREATE INDEX image_embeddings_split_vectors ON image_embeddings (dataset_id, model, split)
    INCLUDE (image_id, embedding)
    WHERE split IS NOT NULL
        AND 2 * vector_dims(embedding) + octet_length(model) + octet_length(split) <= 2600;
