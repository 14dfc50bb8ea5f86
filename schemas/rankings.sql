-- schemas/rankings.sql: the rankings database, schema version 1 (DESIGN.md §5).
-- InstructGPT's labelers' records: prompts, the K completions a model wrote for each, who
-- ranked which prompt's completions how (ties allowed), ratings and flags, skips, and the
-- leases that keep two labelers off the same prompt. common/store.c compiles this file in
-- and runs it as migration step 0 -> 1; later versions are new steps appended there (never
-- an edit of this file, which is what every version-1 database was made from).
-- Text a model or a person wrote is stored as BLOB bytes (it may contain U+0000); names and
-- settings that we write ourselves are TEXT. Times are Unix milliseconds.

PRAGMA application_id = 1380730950; -- 0x524C4846 "RLHF": marks the file as ours

-- Settings every process must agree on: 'overlap' (the share of prompts given to two
-- labelers, recorded at first use), 'application'.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('application', 'rlhf.c rankings');

-- One row per distinct prompt text. hash (from the text, common/store.c store_hash) decides
-- whether the prompt is an overlap prompt: hash % 1000000 < overlap * 1000000.
CREATE TABLE prompts (
    id       INTEGER PRIMARY KEY,
    text     BLOB NOT NULL UNIQUE,
    hash     INTEGER NOT NULL CHECK (hash >= 0),
    added_ms INTEGER NOT NULL
) STRICT;

-- The completions of a prompt; one (model, settings) run adds K of them (idx 0..K-1) at once,
-- and the UNIQUE key makes a rerun of the same run add nothing. model is the model directory
-- that wrote them, or "import:FILE"; settings is a JSON object of the sampling settings.
CREATE TABLE completions (
    id        INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts (id),
    model     TEXT NOT NULL CHECK (length(model) > 0),
    settings  TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    idx       INTEGER NOT NULL CHECK (idx >= 0),
    text      BLOB NOT NULL,
    added_ms  INTEGER NOT NULL,
    UNIQUE (prompt_id, model, settings, idx),
    UNIQUE (id, prompt_id) -- target of ranks' foreign key: a rank names its prompt's completion
) STRICT;

CREATE TABLE labelers (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    added_ms INTEGER NOT NULL
) STRICT;

-- One labeler's ordering of one prompt's completions (a labeler ranks a prompt at most once).
-- AUTOINCREMENT: an id is never reused after an undo, so exports and logs stay unambiguous.
CREATE TABLE rankings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id   INTEGER NOT NULL REFERENCES prompts (id),
    labeler_id  INTEGER NOT NULL REFERENCES labelers (id),
    created_ms  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    UNIQUE (prompt_id, labeler_id),
    UNIQUE (id, prompt_id)
) STRICT;
CREATE INDEX rankings_labeler ON rankings (labeler_id, id);

-- Per completion of a ranking: its rank (1 = best, ties share a rank), an optional 1-7
-- overall rating, and InstructGPT's flags. Deleting a ranking deletes its rows.
CREATE TABLE ranks (
    ranking_id        INTEGER NOT NULL,
    prompt_id         INTEGER NOT NULL,
    completion_id     INTEGER NOT NULL,
    rank              INTEGER NOT NULL CHECK (rank >= 1),
    rating            INTEGER CHECK (rating BETWEEN 1 AND 7), -- NULL = not rated
    fails_instruction INTEGER NOT NULL DEFAULT 0 CHECK (fails_instruction IN (0, 1)),
    harmful           INTEGER NOT NULL DEFAULT 0 CHECK (harmful IN (0, 1)),
    made_up_facts     INTEGER NOT NULL DEFAULT 0 CHECK (made_up_facts IN (0, 1)),
    PRIMARY KEY (ranking_id, completion_id),
    FOREIGN KEY (ranking_id, prompt_id) REFERENCES rankings (id, prompt_id) ON DELETE CASCADE,
    FOREIGN KEY (completion_id, prompt_id) REFERENCES completions (id, prompt_id)
) STRICT;
CREATE INDEX ranks_completion ON ranks (completion_id, prompt_id);

-- A labeler declined a prompt; it is never offered to that labeler again (others still get it).
CREATE TABLE skips (
    id         INTEGER PRIMARY KEY,
    prompt_id  INTEGER NOT NULL REFERENCES prompts (id),
    labeler_id INTEGER NOT NULL REFERENCES labelers (id),
    created_ms INTEGER NOT NULL,
    reason     TEXT NOT NULL CHECK (length(reason) > 0),
    UNIQUE (prompt_id, labeler_id)
) STRICT;

-- The prompt a labeler is working on, until expires_ms (a labeler holds at most one).
CREATE TABLE leases (
    prompt_id  INTEGER NOT NULL REFERENCES prompts (id),
    labeler_id INTEGER NOT NULL UNIQUE REFERENCES labelers (id),
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, labeler_id)
) STRICT;

PRAGMA user_version = 1;
