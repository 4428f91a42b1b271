-- Workspace extensions of the zero-shot tag taxonomy: entries added (with their own
-- prompts) or base entries disabled. The base taxonomy itself ships with the code.
CREATE TABLE taxonomy_entries (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('objects', 'scenes', 'attributes')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    prompts       text[] NOT NULL DEFAULT '{}',
    enabled       boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, kind, name)
);
