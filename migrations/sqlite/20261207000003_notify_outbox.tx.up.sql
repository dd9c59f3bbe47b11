-- Notices for offline users (issue 9, section 2). One row per notice: what
-- a recipient has not received of a conversation, for the marketplace's
-- notification service. A send writes it in its own statement, so that a
-- message is never stored without its notice (see db/outbox.go).
--
-- A row is open (latest_seq NULL) until its first attempt, and every send
-- to the conversation before then folds into it: one open row per
-- recipient and conversation. The first attempt freezes it (latest_seq,
-- payload), so that every retry sends the same body under the same id; a
-- message sent after that opens a new row.
CREATE TABLE notify_outbox (
    -- The webhook-id of every attempt.
    id              text PRIMARY KEY,
    recipient_id    text NOT NULL,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The newest message folded into the row.
    upto_seq        integer NOT NULL,
    -- When the next attempt is due: the first message's time plus the
    -- delay, then the retry schedule.
    due_at          timestamp NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    -- The instance working on it, until claimed_until; after that another
    -- may take it (the first one crashed).
    claimed_by      text,
    claimed_until   timestamp,
    -- Set by the first attempt: the newest message it tells of, the body
    -- every attempt sends, and when the retries stop.
    latest_seq      integer,
    payload         text,
    expires_at      timestamp,
    created_at      timestamp NOT NULL
);
--bun:split
CREATE UNIQUE INDEX notify_outbox_open_idx ON notify_outbox (recipient_id, conversation_id) WHERE latest_seq IS NULL;
--bun:split
CREATE INDEX notify_outbox_pair_idx ON notify_outbox (conversation_id, recipient_id);
--bun:split
CREATE INDEX notify_outbox_due_idx ON notify_outbox (due_at);
--bun:split
-- A receiver that answered 410 Gone wants no more notices: every instance
-- stops sending to that URL (endpoint_key, a hash of it) until the row is
-- deleted or the URL changes.
CREATE TABLE notify_webhook_off (
    endpoint_key text PRIMARY KEY,
    endpoint     text NOT NULL,
    status       integer NOT NULL,
    off_at       timestamp NOT NULL
);
