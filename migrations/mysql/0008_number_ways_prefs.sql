-- Further ways to reach a number, tried in order after the letter in PBXNumbers.Message
-- (which stays the first way, exactly as admins set it today). A number without rows
-- here behaves exactly as before. Extension empty = the PBXNumbers Extension.
CREATE TABLE IF NOT EXISTS smsrouter_number_way (
  Account   VARCHAR(32) NOT NULL,
  Position  INT         NOT NULL,
  Letter    CHAR(1)     NOT NULL,
  Extension VARCHAR(80) NOT NULL DEFAULT '',
  PRIMARY KEY (Account, Position)
) DEFAULT CHARSET=utf8mb4;

-- A number's own preferences: quiet hours (HH:MM local to TimeZone, empty = the
-- configured default window), and the PIN that self-service by SMS asks for (empty =
-- none). A number without a row gets the configured defaults.
CREATE TABLE IF NOT EXISTS smsrouter_number_pref (
  Account    VARCHAR(32) NOT NULL,
  QuietStart VARCHAR(5)  NOT NULL DEFAULT '',
  QuietEnd   VARCHAR(5)  NOT NULL DEFAULT '',
  TimeZone   VARCHAR(64) NOT NULL DEFAULT '',
  Pin        VARCHAR(16) NOT NULL DEFAULT '',
  PRIMARY KEY (Account)
) DEFAULT CHARSET=utf8mb4;
