-- The language and voice a number's calls are spoken in (letter V). A side table, so
-- that PBXNumbers stays exactly as the old suite's admins know it. A number without a
-- row (or with empty values) gets the configured default.
CREATE TABLE IF NOT EXISTS smsrouter_number_voice (
  Account  VARCHAR(32) NOT NULL,
  Language VARCHAR(64) NOT NULL DEFAULT '',
  Voice    VARCHAR(64) NOT NULL DEFAULT '',
  PRIMARY KEY (Account)
) DEFAULT CHARSET=utf8mb4;
