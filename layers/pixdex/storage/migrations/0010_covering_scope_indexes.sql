-- Exact rankings filtered from the index alone, on the images side. An exact ranking
-- inside a split (the common "search the test set" case) visited each matching image's
-- heap page only to read its id and status: with the split's rows spread over a large
-- dataset that is one page per row, ~3 us each (15 ms of a 5,000-row ranking at 1M
-- images, bench/bench_scale.py). With id and status in the index the scan is index-only
-- once autovacuum has marked the pages all-visible (it does so after inserts too):
-- 5,000 rows in ~1 ms.
DROP INDEX images_dataset_split;
CREATE INDEX images_dataset_split ON images (dataset_id, split) INCLUDE (id, status)
    WHERE split IS NOT NULL;
-- The same for a whole small dataset ranked exactly (its scope is dataset + status).
DROP INDEX images_dataset_status;
CREATE INDEX images_dataset_status ON images (dataset_id, status) INCLUDE (id);
