package router

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"smsrouter/internal/testdb"
)

// BenchmarkLookup is one directory lookup as chaninfo makes it (one number) and
// as a batch makes it (256 numbers), on each database, from one goroutine: the
// cost of a round trip and of the driver, without the FastAGI around it.
func BenchmarkLookup(b *testing.B) {
	eachBenchDB(b, func(b *testing.B, store *Store, numbers []string) {
		ctx := context.Background()
		dir := NewSQLDirectory(store)
		b.Run("one", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := dir.Lookup(ctx, numbers[i%len(numbers)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("batch256", func(b *testing.B) {
			i := 0
			for b.Loop() {
				lo := (i * 256) % (len(numbers) - 256)
				if m, err := dir.LookupMany(ctx, numbers[lo:lo+256]); err != nil || len(m) != 256 {
					b.Fatal(len(m), err)
				}
				i++
			}
		})
	}, nil)
}

// eachBenchDB runs f on each database with 1000 numbers in PBXNumbers (and
// what add writes for the i-th, when set).
func eachBenchDB(b *testing.B, f func(b *testing.B, store *Store, numbers []string), add func(store *Store, n string, i int) error) {
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", testdb.SQLite}, {"mariadb", testdb.MySQL}} {
		b.Run(db.name, func(b *testing.B) {
			store, err := OpenStore(db.dsn(b))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			ctx := context.Background()
			if _, err := store.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			var numbers []string
			for i := range 1000 {
				n := fmt.Sprint(5550000 + i)
				numbers = append(numbers, n)
				if err := store.Set(ctx, Entry{Number: n, Letter: 'S', Extension: "PJSIP/" + n}); err != nil {
					b.Fatal(err)
				}
				if add != nil {
					if err := add(store, n, i); err != nil {
						b.Fatal(err)
					}
				}
			}
			f(b, store, numbers)
		})
	}
}

// BenchmarkLookupWays is the batch lookup with the further ways joined in
// (one number in ten has two), next to its baseline in the same process: the
// query before ways existed, PBXNumbers alone, scanned the same way.
func BenchmarkLookupWays(b *testing.B) {
	eachBenchDB(b, func(b *testing.B, store *Store, names []string) {
		ctx := context.Background()
		numbers := make([]any, len(names))
		for i, n := range names {
			numbers[i] = n
		}
		q := "SELECT Account, Message, Extension FROM PBXNumbers WHERE Account IN (?" + strings.Repeat(",?", 255) + ")"
		b.Run("baseline_pbxnumbers_only", func(b *testing.B) {
			i := 0
			for b.Loop() {
				lo := (i * 256) % (len(numbers) - 256)
				rows, err := store.query(ctx, q, numbers[lo:lo+256]...)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					var acc, msg, ext sql.NullString
					if err := rows.Scan(&acc, &msg, &ext); err != nil {
						b.Fatal(err)
					}
					readRow(acc.String, msg, ext)
					n++
				}
				rows.Close()
				if n != 256 {
					b.Fatal(n)
				}
				i++
			}
		})
		dir := NewSQLDirectory(store)
		b.Run("with_ways", func(b *testing.B) {
			i := 0
			for b.Loop() {
				lo := (i * 256) % (len(names) - 256)
				if m, err := dir.LookupMany(ctx, names[lo:lo+256]); err != nil || len(m) != 256 {
					b.Fatal(len(m), err)
				}
				i++
			}
		})
	}, func(store *Store, n string, i int) error {
		if i%10 != 0 {
			return nil
		}
		return store.SetWays(context.Background(), n, []NumberWay{{Letter: 'S'}, {Letter: 'V'}})
	})
}

// BenchmarkLookupLetters is a batch of 8 numbers, about what router.Coalescing
// gathers for chaninfo at 50 clients, through the router's lookup (with the
// further ways and preferences joined in) and through chaninfo's
// (NewSQLLetterDirectory, PBXNumbers alone), in the same process.
func BenchmarkLookupLetters(b *testing.B) {
	eachBenchDB(b, func(b *testing.B, store *Store, numbers []string) {
		ctx := context.Background()
		for _, d := range []struct {
			name string
			dir  *SQLDirectory
		}{{"router", NewSQLDirectory(store)}, {"letters", NewSQLLetterDirectory(store)}} {
			b.Run(d.name, func(b *testing.B) {
				i := 0
				for b.Loop() {
					lo := (i * 8) % (len(numbers) - 8)
					if m, err := d.dir.LookupMany(ctx, numbers[lo:lo+8]); err != nil || len(m) != 8 {
						b.Fatal(len(m), err)
					}
					i++
				}
			})
		}
	}, nil)
}
