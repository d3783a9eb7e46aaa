package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"smsrouter/migrations"
	"smsrouter/router"
)

// TestCommandsOpenTheStoreAlike: every command that starts by loading the
// config and opening the database (common.openStore) answers a broken config,
// a missing database and an old schema the same way: exit 2 and what to do.
func TestCommandsOpenTheStoreAlike(t *testing.T) {
	root, spool, conf := plainSetup(t)
	bad := filepath.Join(root, "bad.toml")
	writeFile(t, bad, []byte("spool = \nnonsense\n"))
	commands := [][]string{
		{"lookup", "5551001"}, {"route", "5551001"},
		{"explain", "--from", "5550001", "--to", "5551001", "--text", "hi"},
		{"journal"}, {"journal", "show", "1795239855000-0123456789"}, {"journal", "prune"}, {"journal", "prune", "--dry-run"},
		{"retry", "--state", "deferred"}, {"drop", "1795239855000-0123456789"}, {"evidence"},
		{"number", "set", "5551001", "S", "PJSIP/1"}, {"number", "delete", "5551001"},
		{"number", "voice", "--no-check", "5551001", "pl"}, {"number", "ways", "5551001"},
		{"number", "pin", "5551001", "4821"}, {"number", "unlock", "5551001"},
		{"agi", "--listen", "127.0.0.1:0"},
	}
	check := func(what string, cfgFile, want string) {
		t.Helper()
		for _, args := range commands {
			_, errOut, code := runEnv(t, nil, append(args, "--config", cfgFile)...)
			if code != exitUsage || !strings.Contains(errOut, want) {
				t.Errorf("%s, %s: exit %d, stderr %q; want %d and %q", what, strings.Join(args, " "), code, errOut, exitUsage, want)
			}
		}
	}
	check("a config that does not parse", bad, "bad.toml")
	check("no database", conf, "does not exist yet: create it with `smsrouter migrate`")

	if out, errOut, code := runEnv(t, nil, "migrate", "--config", conf); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	store, err := router.OpenStore("sqlite:" + filepath.Join(spool, "smsrouter", "smsrouter.db"))
	if err != nil {
		t.Fatal(err)
	}
	latest := migrations.Latest("sqlite")
	if _, err := store.DB.Exec(`DELETE FROM smsrouter_schema WHERE version = ?`, latest); err != nil {
		t.Fatal(err)
	}
	store.Close()
	check("an old schema", conf, fmt.Sprintf("this smsrouter needs %d: run `smsrouter migrate`", latest))
}
