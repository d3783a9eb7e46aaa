package router

import (
	"context"
	"path/filepath"
	"testing"
)

func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd #1 ?x=y %20")
	store, err := OpenStore("sqlite:" + filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "db.sqlite")); len(matches) != 1 {
		t.Fatalf("the database was not created at its path: %v", matches)
	}
}

func TestRedactHidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"mysql:user:secret@tcp(127.0.0.1:3306)/db": "mysql:user:***@tcp(127.0.0.1:3306)/db",
		"mysql:user@tcp(127.0.0.1:3306)/db":        "mysql:user@tcp(127.0.0.1:3306)/db",
		"sqlite:/x/y.db":                           "sqlite:/x/y.db",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := OpenStore("postgres:x"); err == nil {
		t.Error("unknown DSN kind accepted")
	}
}
