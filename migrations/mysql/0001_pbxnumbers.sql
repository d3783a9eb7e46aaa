-- The directory exactly as installations of the old Python suite have it. An
-- existing table is adopted as it is: IF NOT EXISTS leaves its rows and columns alone.
CREATE TABLE IF NOT EXISTS PBXNumbers (
  Account   VARCHAR(32)  NOT NULL,
  Message   CHAR(1)      NOT NULL DEFAULT 'S',
  Extension VARCHAR(128) NOT NULL DEFAULT '',
  PRIMARY KEY (Account)
) DEFAULT CHARSET=utf8mb4;
