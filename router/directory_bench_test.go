package router

import (
	"context"
	"fmt"
	"testing"

	"smsrouter/internal/testdb"
)

// BenchmarkLookup is one directory lookup as chaninfo makes it (one number) and
// as a batch makes it (256 numbers), on each database, from one goroutine: the
// cost of a round trip and of the driver, without the FastAGI around it.
func BenchmarkLookup(b *testing.B) {
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
			}
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
		})
	}
}
