-- How a model's vectors are compared. Image embeddings are L2-normalised and ranked by
-- cosine distance; the offline model's class-probability vectors
-- ("efficientnet-lite0-classes") are ranked by inner product with a prompt's class
-- weights, so the score is a weighted probability in [0, 1] rather than an angle.
ALTER TABLE embedding_models
    ADD COLUMN metric text NOT NULL DEFAULT 'cosine' CHECK (metric IN ('cosine', 'ip'));
