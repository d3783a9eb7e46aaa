package main

import (
	"context"
	"strings"
	"testing"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

func TestNumberWaysCommand(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		if out, errOut, code := runEnv(t, nil, "migrate", "--db", dsn); code != 0 {
			t.Fatalf("migrate: %s%s", out, errOut)
		}
		if _, errOut, code := runEnv(t, nil, "number", "set", "5551000", "S", "PJSIP/1000", "--db", dsn); code != 0 {
			t.Fatal(errOut)
		}
		out, errOut, code := runEnv(t, nil, "number", "ways", "5551000", "t,S,F", "--ext", "F=Local/1000@fax", "--db", dsn)
		want := "5551000: T,S,F\n  1. T PJSIP/1000\n  2. S PJSIP/1000\n  3. F Local/1000@fax\n"
		if code != 0 || out != want {
			t.Fatalf("set: exit %d\n%s%s\nwant\n%s", code, out, errOut, want)
		}
		if out, _, _ := runEnv(t, nil, "number", "ways", "5551000", "--db", dsn); out != want {
			t.Fatalf("show:\n%s", out)
		}
		// Refused, and nothing changed: a letter that is no way, a way its channel
		// cannot dial, a letter twice, an unknown number.
		for _, bad := range [][]string{
			{"5551000", "T,C"}, {"5551000", "T,Q"}, {"5551000", "T,F", "--ext", "F=1000"}, {"5551000", "T,S,T"},
			{"5559999", "T,S"}, {"5551000", "--clear", "T"}, {"5551000", "T", "--ext", "X=PJSIP/1"},
		} {
			if out, errOut, code := runEnv(t, nil, append(append([]string{"number", "ways"}, bad...), "--db", dsn)...); code != exitUsage {
				t.Errorf("%v: exit %d, want %d\n%s%s", bad, code, exitUsage, out, errOut)
			}
		}
		if out, _, _ := runEnv(t, nil, "number", "ways", "5551000", "--db", dsn); out != want {
			t.Fatalf("after refusals:\n%s", out)
		}
		out, _, code = runEnv(t, nil, "number", "ways", "5551000", "--clear", "--db", dsn)
		if code != 0 || out != "5551000: T\n  1. T PJSIP/1000\n" {
			t.Fatalf("clear: %d %q", code, out)
		}

		// doctor's lint: a way an admin's SQL made that cannot work.
		store, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if _, err := store.DB.Exec(`INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES ('5551000', 1, 'F', 'nodial')`); err != nil {
			t.Fatal(err)
		}
		got := wayFindings(context.Background(), store)
		if len(got) != 1 || got[0].Level != checkWarn || !strings.Contains(got[0].Detail, "Position=1") ||
			!strings.Contains(got[0].Detail, "not a dialable channel") || !strings.HasPrefix(got[0].Fix, "smsrouter number ways 5551000 ") {
			t.Fatalf("doctor: %+v", got)
		}
	})
}
