-- Keep embeddings inline in the heap instead of out-of-line TOAST. A 1280-d halfvec is
-- ~2.5 kB, just over the TOAST threshold, so with the default storage every exact-ranking
-- row fetch also paid a TOAST index lookup and another heap read. MAIN keeps values inline
-- whenever the row fits a page (3 such rows per 8 kB page) and still moves a very large
-- vector out of line rather than failing, as PLAIN would. Affects rows written from now on.
ALTER TABLE image_embeddings ALTER COLUMN embedding SET STORAGE MAIN;
