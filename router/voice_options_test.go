package router

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"smsrouter/internal/testdb"
	"smsrouter/migrations"
)

func TestVoiceOptionsRoundTrip(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		store := migratedStore(t, dsn)
		if err := store.Set(ctx, Entry{Number: "5551001", Letter: 'V', Extension: "PJSIP/1001"}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name            string
			lang, voice     string
			wantL, wantV    string
			wantErrBadValue bool
		}{
			{name: "no row", wantL: "", wantV: ""},
			{name: "language only", lang: "pl", wantL: "pl"},
			{name: "replace with voice", lang: "en-gb", voice: "en-gb+f3", wantL: "en-gb", wantV: "en-gb+f3"},
			{name: "option-like language refused", lang: "-w/etc/passwd", wantL: "en-gb", wantV: "en-gb+f3", wantErrBadValue: true},
			{name: "blank voice refused", voice: "a b", wantL: "en-gb", wantV: "en-gb+f3", wantErrBadValue: true},
			{name: "both empty removes the row", wantL: "", wantV: ""},
		}
		for _, s := range steps {
			err := store.SetVoiceOptions(ctx, "5551001", s.lang, s.voice)
			if s.wantErrBadValue != errors.Is(err, ErrBadVoiceOption) {
				t.Fatalf("%s: set: %v", s.name, err)
			}
			l, v, err := store.VoiceOptions(ctx, "5551001")
			if err != nil || l != s.wantL || v != s.wantV {
				t.Fatalf("%s: got %q %q %v, want %q %q", s.name, l, v, err, s.wantL, s.wantV)
			}
		}
		var n int
		if err := store.DB.QueryRow(`SELECT COUNT(*) FROM smsrouter_number_voice`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows left: %d %v", n, err)
		}
	})
}

func TestVoiceOptionsToleratesHandEdits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		store := migratedStore(t, dsn)
		if _, err := store.DB.Exec(`INSERT INTO smsrouter_number_voice (Account, Language, Voice) VALUES ('1', ' pl ', '--evil'), ('2', 'de', '')`); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ n, l, v string }{{"1", "pl", ""}, {"2", "de", ""}} {
			l, v, err := store.VoiceOptions(context.Background(), c.n)
			if err != nil || l != c.l || v != c.v {
				t.Errorf("%s: got %q %q %v, want %q %q", c.n, l, v, err, c.l, c.v)
			}
		}
	})
}

func TestVoiceOptionsDatabaseDownIsTemporary(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		store := migratedStore(t, dsn)
		store.Close()
		_, _, err := store.VoiceOptions(context.Background(), "5551001")
		if !errors.Is(err, ErrDirectoryUnavailable) {
			t.Fatalf("err %v, want ErrDirectoryUnavailable", err)
		}
	})
}

// An installation already at schema 2 (PBXNumbers with the admins' rows, the
// journal) gets only the later tables; PBXNumbers keeps its columns and rows.
func TestMigrateAddsVoiceTableOnlyToExistingDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		store := migratedStore(t, dsn)
		if err := store.Set(ctx, Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}); err != nil {
			t.Fatal(err)
		}
		before := columns(t, store, "PBXNumbers")
		// Back to the state before 0003 existed.
		for _, q := range []string{`DROP TABLE smsrouter_number_voice`, `DROP TABLE smsrouter_batch`, `DROP TABLE smsrouter_attempt`,
			`ALTER TABLE smsrouter_journal DROP COLUMN text`, `DELETE FROM smsrouter_schema WHERE version >= 3`} {
			if _, err := store.DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		applied, err := store.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := migrations.List(store.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, m := range ms[2:] {
			want = append(want, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
		if !reflect.DeepEqual(applied, want) {
			t.Fatalf("applied %v, want only the steps after 0002: %v", applied, want)
		}
		if after := columns(t, store, "PBXNumbers"); !reflect.DeepEqual(before, after) {
			t.Fatalf("PBXNumbers changed: %v → %v", before, after)
		}
		e, err := NewSQLDirectory(store).Lookup(ctx, "5551001")
		if err != nil || e.Letter != 'S' || e.Extension != "PJSIP/1001" {
			t.Fatalf("row lost: %+v %v", e, err)
		}
		if err := store.SetVoiceOptions(ctx, "5551001", "pl", ""); err != nil {
			t.Fatal(err)
		}
		if again, err := store.Migrate(ctx); err != nil || len(again) != 0 {
			t.Fatalf("second migrate applied %v, %v", again, err)
		}
	})
}

func migratedStore(t *testing.T, dsn string) *Store {
	t.Helper()
	store, err := OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

func columns(t *testing.T, s *Store, table string) []string {
	t.Helper()
	rows, err := s.DB.Query("SELECT * FROM " + table + " WHERE 1 = 0")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols
}
