-- Further ways to reach a number, tried in order after the letter in PBXNumbers.Message
-- (which stays the first way, exactly as admins set it today). A number without rows
-- here behaves exactly as before. Extension empty = the PBXNumbers Extension.
CREATE TABLE IF NOT EXISTS smsrouter_number_way (
  Account   TEXT    NOT NULL,
  Position  INTEGER NOT NULL,
  Letter    TEXT    NOT NULL,
  Extension TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (Account, Position)
);

-- A number's own preferences: quiet hours (HH:MM local to TimeZone, empty = the
-- configured default window), and the PIN that self-service by SMS asks for (empty =
-- none). A number without a row gets the configured defaults.
CREATE TABLE IF NOT EXISTS smsrouter_number_pref (
  Account    TEXT NOT NULL PRIMARY KEY,
  QuietStart TEXT NOT NULL DEFAULT '',
  QuietEnd   TEXT NOT NULL DEFAULT '',
  TimeZone   TEXT NOT NULL DEFAULT '',
  Pin        TEXT NOT NULL DEFAULT ''
);
