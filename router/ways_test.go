package router

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"smsrouter/internal/quiet"
)

func TestNumberWaysStoredAndLookedUp(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		ctx := context.Background()
		rg.set("5551000", 'T', "PJSIP/1000")
		rg.set("5551001", 'S', "PJSIP/1001")
		if err := rg.store.SetWays(ctx, "5551000", []NumberWay{{Letter: 'S'}, {Letter: 'V', Extension: "PJSIP/1099"}}); err != nil {
			t.Fatal(err)
		}
		m, err := rg.dir.LookupMany(ctx, []string{"5551000", "5551001"})
		if err != nil {
			t.Fatal(err)
		}
		want := []NumberWay{{Letter: 'S', Extension: "PJSIP/1000"}, {Letter: 'V', Extension: "PJSIP/1099"}}
		if e := m["5551000"]; !reflect.DeepEqual(e.Further, want) || e.WaysText() != "T,S,V" || e.Letter != 'T' {
			t.Fatalf("lookup %+v", e)
		}
		if e := m["5551001"]; e.Further != nil || e.WaysText() != "S" {
			t.Fatalf("a number without ways: %+v", e)
		}
		// "" in the table is the number's own Extension: a later change carries over.
		rg.set("5551000", 'T', "PJSIP/2000")
		if w, _ := rg.store.Ways(ctx, "5551000"); w[0].Extension != "PJSIP/2000" {
			t.Fatalf("ways %+v", w)
		}
		for _, bad := range []struct {
			number string
			ways   []NumberWay
			want   error
		}{
			{"5551000", []NumberWay{{Letter: 'C'}}, ErrBadEntry},
			{"5551000", []NumberWay{{Letter: 'X'}}, ErrBadEntry},
			{"5551000", []NumberWay{{Letter: 'S', Extension: "nodial"}}, ErrBadEntry},
			{"5559999", []NumberWay{{Letter: 'S'}}, ErrUnknownNumber},
			{"../x", []NumberWay{{Letter: 'S'}}, ErrBadEntry},
		} {
			if err := rg.store.SetWays(ctx, bad.number, bad.ways); !errors.Is(err, bad.want) {
				t.Errorf("%s %+v: %v, want %v", bad.number, bad.ways, err, bad.want)
			}
		}
		// Rows an admin's SQL put there: a bad one is listed by doctor and
		// skipped by the router, the good ones still work.
		for _, q := range []string{
			`INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES ('5551001', 1, 'Q', '')`,
			`INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES ('5551001', 2, 'S', 'PJSIP/1002')`,
			`INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES ('5550404', 1, 'S', '')`,
		} {
			if _, err := rg.store.DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		bad, err := rg.store.BadWays(ctx)
		if err != nil || len(bad) != 2 || !strings.Contains(bad[0], "Account='5550404'") || !strings.Contains(bad[1], "Position=1") {
			t.Fatalf("doctor: %q %v", bad, err)
		}
		e, _ := rg.dir.Lookup(ctx, "5551001")
		if len(e.Further) != 2 || e.Further[0].Problem == "" || e.Further[1].Problem != "" {
			t.Fatalf("lookup %+v", e)
		}
		// Clearing.
		if err := rg.store.SetWays(ctx, "5551000", nil); err != nil {
			t.Fatal(err)
		}
		if w, _ := rg.store.Ways(ctx, "5551000"); len(w) != 0 {
			t.Fatalf("ways after clear %+v", w)
		}
	})
}

// A message held for longer than any rule counts keeps a claim name that
// reads back, and a number cannot list more ways than the claim name holds.
func TestWayCountsStayInTheClaimName(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551000", 'T', "PJSIP/1000")
	many := make([]NumberWay, MaxFurtherWays+1)
	for i := range many {
		many[i] = NumberWay{Letter: 'S'}
	}
	if err := rg.store.SetWays(context.Background(), "5551000", many); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("%d ways: %v", len(many), err)
	}
	c := claimName{id: NewID(rg.clock.now()), way: MaxFurtherWays, tries: MaxRuleAttempts + 1}
	if got, ok := parseClaimName(c.String()); !ok || got != c {
		t.Fatalf("%s → %+v %v", c, got, ok)
	}
}

func FuzzParseWay(f *testing.F) {
	for _, s := range [][3]string{{"S", "", "PJSIP/1"}, {" t ", "PJSIP/2", ""}, {"C", "", "PJSIP/1"}, {"ſ", "", "PJSIP/1"}, {"F", "Local/1@fax\n", ""}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, letter, ext, main string) {
		w, err := ParseWay(letter, ext, main)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("%v does not wrap ErrBadEntry", err)
			}
			return
		}
		// What is accepted is a way a channel can take, and reads back the same.
		if !strings.Contains(WayLetters, string(w.Letter)) || w.Extension == "" {
			t.Fatalf("accepted %+v", w)
		}
		if again, err := ParseWay(string(w.Letter), w.Extension, ""); err != nil || again != w {
			t.Fatalf("%+v → %+v %v", w, again, err)
		}
	})
}

// The preferences come in the lookup's one query, joined with the further
// ways: a number with several ways and a preference row gets it once, whole,
// and the numbers of a batch may repeat.
func TestLookupCarriesPreferences(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		ctx := context.Background()
		rg.set("5551000", 'T', "PJSIP/1000")
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.set("5551002", 'S', "PJSIP/1002")
		if err := rg.store.SetWays(ctx, "5551000", []NumberWay{{Letter: 'S'}, {Letter: 'V', Extension: "PJSIP/1099"}}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd, TimeZone, Pin) VALUES ('5551000', '22:00', '07:00', 'Europe/Warsaw', '1234')`,
			`INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd, TimeZone, Pin) VALUES ('5551001', 'off', '', '', '')`,
			// Not in PBXNumbers: nobody looks it up.
			`INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd, TimeZone, Pin) VALUES ('5550404', '20:00', '08:00', '', '')`,
		} {
			if _, err := rg.store.DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		m, err := rg.dir.LookupMany(ctx, []string{"5551000", "5551001", "5551000", "5551002", "5550404"})
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 3 {
			t.Fatalf("entries %v", m)
		}
		p := m["5551000"].pref
		if p.window != (quiet.Window{Start: 22 * 60, End: 7 * 60}) || !p.own || p.pin != "1234" || p.zone == nil ||
			p.zone.String() != "Europe/Warsaw" || p.problem != "" || m["5551000"].WaysText() != "T,S,V" {
			t.Fatalf("5551000: %+v", m["5551000"])
		}
		if p := m["5551001"].pref; !p.own || !p.window.Off() || p.pin != "" {
			t.Fatalf("5551001 turned quiet hours off: %+v", p)
		}
		if p := m["5551002"].pref; p.own || p.zone != nil || p.pin != "" {
			t.Fatalf("5551002 has no row: %+v", p)
		}
		if e, err := rg.dir.Lookup(ctx, "5551000"); err != nil || e.pref.pin != "1234" {
			t.Fatalf("single lookup: %+v %v", e, err)
		}
	})
}
