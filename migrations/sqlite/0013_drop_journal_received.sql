-- The index on received alone is covered by smsrouter_journal_received_id (received,
-- id) from 0011: every query by received can use that one, and each journal write
-- kept both up to date.
DROP INDEX IF EXISTS smsrouter_journal_received;
