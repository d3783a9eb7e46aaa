-- The index on (state, next_attempt) from 0002 serves no query: none orders or
-- filters by next_attempt, and smsrouter_journal_state_received (state,
-- received) from 0011 answers every query by state. Each journal write kept
-- both up to date.
DROP INDEX IF EXISTS smsrouter_journal_state ON smsrouter_journal;
