-- Contact details (issue 9, section 3). A conversation's contact policy;
-- NULL follows the server's default (JOBCHAT_CONTACT_POLICY), so that
-- changing the default reaches every conversation nobody set.
ALTER TABLE conversations ADD COLUMN contact_policy text;
--bun:split
-- A masked message (the MASK policy) keeps the recipient's text, with its
-- contact details replaced, in message_text, and the text as its sender
-- wrote it here; NULL when nothing was masked. Whatever reads message_text
-- without knowing better shows the masked text.
ALTER TABLE messages ADD COLUMN original_text text;
--bun:split
-- Moderation flags (CONTACT_DETAILS), comma-separated; NULL for none.
ALTER TABLE messages ADD COLUMN flags text;
