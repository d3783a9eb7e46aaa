package router

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"smsrouter/internal/testdb"
)

// sessionCounters reads MariaDB's per-session command counters. With a pool of
// one connection they are the counters of every query the store sent.
func sessionCounters(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	rows, err := db.Query("SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare','Com_stmt_execute','Com_stmt_close','Com_select')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var v int
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func withParam(dsn, param string) string {
	if param == "" {
		return dsn
	}
	if strings.Contains(dsn[strings.LastIndexByte(dsn, '/'):], "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

// TestMySQLLookupRoundTrips counts on a real MariaDB what the directory sends,
// whether the DSN has the driver interpolate or not: one prepare per query
// shape and then one execute per lookup, never a prepare-execute-close triple
// nor a text query parsed anew. (MariaDB counts a prepared SELECT's execution
// in Com_select too.)
func TestMySQLLookupRoundTrips(t *testing.T) {
	const rounds = 10
	for _, tc := range []struct {
		name, param                    string
		prepare, execute, close, query int
	}{
		// Two shapes: one number, and three padded to four.
		{"default", "", 2, 2 * rounds, 0, 2 * rounds},
		{"interpolateParams=true", "interpolateParams=true", 2, 2 * rounds, 0, 2 * rounds},
		{"interpolateParams=false", "interpolateParams=false", 2, 2 * rounds, 0, 2 * rounds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, err := OpenStore(withParam(testdb.MySQL(t), tc.param))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			store.SetPool(1)
			ctx := context.Background()
			if _, err := store.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := store.Set(ctx, Entry{Number: fmt.Sprint(5551000 + i), Letter: 'S', Extension: "PJSIP/x"}); err != nil {
					t.Fatal(err)
				}
			}
			dir := NewSQLDirectory(store)
			before := sessionCounters(t, store.DB)
			for range rounds {
				if e, err := dir.Lookup(ctx, "5551000"); err != nil || e.Letter != 'S' {
					t.Fatalf("lookup: %+v %v", e, err)
				}
				m, err := dir.LookupMany(ctx, []string{"5551000", "5551001", "5559999"})
				if err != nil || len(m) != 2 {
					t.Fatalf("lookup many: %v %v", m, err)
				}
			}
			after := sessionCounters(t, store.DB)
			for k, want := range map[string]int{"Com_stmt_prepare": tc.prepare, "Com_stmt_execute": tc.execute,
				"Com_stmt_close": tc.close, "Com_select": tc.query} {
				if got := after[k] - before[k]; got != want {
					t.Errorf("%s: %d for %d lookups, want %d", k, got, 2*rounds, want)
				}
			}
		})
	}
}

func TestMySQLPoolAndUnsafeCollation(t *testing.T) {
	store, err := OpenStore("mysql:u:p@tcp(127.0.0.1:1)/db")
	if err != nil {
		t.Fatal(err)
	}
	if got := store.DB.Stats().MaxOpenConnections; got != defaultMySQLPool {
		t.Errorf("default pool %d, want %d", got, defaultMySQLPool)
	}
	store.SetPool(266)
	if got := store.DB.Stats().MaxOpenConnections; got != 266 {
		t.Errorf("pool %d after SetPool(266)", got)
	}
	store.Close()
	// The driver refuses to interpolate under a collation where escaping is
	// unsafe: the store then opens without interpolation instead of failing.
	store, err = OpenStore("mysql:u:p@tcp(127.0.0.1:1)/db?collation=gbk_chinese_ci")
	if err != nil {
		t.Fatalf("unsafe collation: %v", err)
	}
	store.Close()
	if _, err := OpenStore("mysql:u:p@tcp(127.0.0.1:1)/db?collation=gbk_chinese_ci&interpolateParams=true"); err == nil {
		t.Error("an explicit interpolateParams=true under an unsafe collation must be refused")
	}
}

func TestDSNParam(t *testing.T) {
	for _, tc := range []struct {
		dsn, key, want string
		ok             bool
	}{
		{"u:p@tcp(h:1)/db?interpolateParams=false", "interpolateParams", "false", true},
		{"u:p@tcp(h:1)/db?charset=utf8mb4&interpolateParams=true", "interpolateParams", "true", true},
		{"u:p@tcp(h:1)/db", "interpolateParams", "", false},
		{"u:pa?interpolateParams=false@tcp(h:1)/db", "interpolateParams", "", false},
		{"u:p/x?interpolateParams=0@tcp(h:1)/db?x=1", "interpolateParams", "", false},
		{"u:p@tcp(h:1)/db?xinterpolateParams=false", "interpolateParams", "", false},
	} {
		got, ok := dsnParam(tc.dsn, tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("dsnParam(%q) = %q, %v; want %q, %v", tc.dsn, got, ok, tc.want, tc.ok)
		}
	}
}
