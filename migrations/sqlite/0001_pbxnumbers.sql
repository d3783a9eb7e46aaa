-- The directory exactly as installations of the old Python suite have it. An
-- existing table is adopted as it is: IF NOT EXISTS leaves its rows and columns alone.
CREATE TABLE IF NOT EXISTS PBXNumbers (
  Account   TEXT NOT NULL PRIMARY KEY,
  Message   TEXT NOT NULL DEFAULT 'S',
  Extension TEXT NOT NULL DEFAULT ''
);
