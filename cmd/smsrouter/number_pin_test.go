package main

import (
	"testing"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

func TestNumberPINCommand(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		if out, errOut, code := runEnv(t, nil, "migrate", "--db", dsn); code != 0 {
			t.Fatalf("migrate: %s%s", out, errOut)
		}
		if _, errOut, code := runEnv(t, nil, "number", "set", "5551000", "S", "PJSIP/1000", "--db", dsn); code != 0 {
			t.Fatal(errOut)
		}
		store, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		pin := func() string {
			t.Helper()
			var p string
			if err := store.DB.QueryRow(`SELECT Pin FROM smsrouter_number_pref WHERE Account = '5551000'`).Scan(&p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if out, errOut, code := runEnv(t, nil, "number", "pin", "5551000", "4821", "--db", dsn); code != 0 || pin() != "4821" {
			t.Fatalf("pin: exit %d %s%s, pin %q", code, out, errOut, pin())
		}
		for _, bad := range [][]string{{"5551000", "12"}, {"5551000", "12ab"}, {"5559999", "4821"}, {"../x", "4821"}} {
			if out, errOut, code := runEnv(t, nil, append([]string{"number", "pin"}, append(bad, "--db", dsn)...)...); code != exitUsage {
				t.Errorf("%v: exit %d, want %d\n%s%s", bad, code, exitUsage, out, errOut)
			}
		}
		if pin() != "4821" {
			t.Fatalf("a refused pin changed it to %q", pin())
		}
		if _, errOut, code := runEnv(t, nil, "number", "unlock", "5551000", "--db", dsn); code != 0 {
			t.Fatal(errOut)
		}
		if _, errOut, code := runEnv(t, nil, "number", "pin", "5551000", "off", "--db", dsn); code != 0 || pin() != "" {
			t.Fatalf("off: %s, pin %q", errOut, pin())
		}
		var n int
		if err := store.DB.QueryRow(`SELECT COUNT(*) FROM smsrouter_admin_action WHERE target = '5551000' AND user LIKE 'cli%'`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("admin actions: %d %v", n, err)
		}
	})
}
