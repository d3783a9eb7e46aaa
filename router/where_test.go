package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
)

func TestConcatUDH(t *testing.T) {
	for _, c := range []struct {
		name string
		udh  []byte
		want []byte
		err  string
	}{
		{"8-bit reference", []byte{5, 0, 3, 0x2a, 3, 1}, []byte{0, 3, 0x2a, 3, 1}, ""},
		{"16-bit reference", []byte{6, 8, 4, 0x12, 0x34, 2, 2}, []byte{8, 4, 0x12, 0x34, 2, 2}, ""},
		{"empty", nil, nil, "empty"},
		{"length octet wrong", []byte{6, 0, 3, 1, 2, 1}, nil, "length octet"},
		{"port addressing", []byte{6, 5, 4, 0x0b, 0x84, 0x23, 0xf0}, nil, "element 05"},
		{"concat and ports", []byte{11, 0, 3, 1, 2, 1, 5, 4, 0x0b, 0x84, 0x23, 0xf0}, nil, "element 05"},
		{"two concats", []byte{10, 0, 3, 1, 2, 1, 0, 3, 1, 2, 2}, nil, "two concatenation"},
		{"element past the end", []byte{4, 0, 3, 1, 2}, nil, "past the end"},
		{"part 0", []byte{5, 0, 3, 1, 2, 0}, nil, "part number"},
		{"part beyond total", []byte{5, 0, 3, 1, 2, 3}, nil, "part number"},
		{"total 1", []byte{5, 0, 3, 1, 1, 1}, nil, "total at least 2"},
	} {
		got, err := ConcatUDH(c.udh)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrNotConcat) {
				t.Errorf("%s: %x, %v; want error with %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != string(c.want) {
			t.Errorf("%s: %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}

func TestSubmitMessageValidityAndAccepted(t *testing.T) {
	inbox := t.TempDir()
	now := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	var seen string
	id, err := SubmitMessage(inbox, Submission{From: "5550001", To: "5551001", Text: "hi", Validity: 90*time.Second + time.Millisecond,
		Accepted: func(id string) error {
			seen = id
			if entries, _ := os.ReadDir(inbox); len(entries) != 0 {
				t.Errorf("the file was queued before Accepted returned: %v", entries)
			}
			return nil
		}}, now)
	if err != nil || seen != id {
		t.Fatalf("id %q seen %q err %v", id, seen, err)
	}
	data, err := os.ReadFile(filepath.Join(inbox, "5551001.smsrouter-"+id))
	if err != nil {
		t.Fatal(err)
	}
	m, err := smsq.Parse(data, time.UTC)
	if err != nil || m.VP != 2 || m.Text != "hi" {
		t.Fatalf("vp %d text %q err %v (validity rounds up to whole minutes)", m.VP, m.Text, err)
	}
	// A refusal from Accepted queues nothing.
	_, err = SubmitMessage(inbox, Submission{From: "5550001", To: "5551001", Text: "no", Accepted: func(string) error { return errors.New("database down") }}, now)
	if err == nil || !strings.Contains(err.Error(), "database down") {
		t.Fatalf("err %v", err)
	}
	if entries, _ := os.ReadDir(inbox); len(entries) != 1 {
		t.Fatalf("inbox holds %d files", len(entries))
	}
	for _, bad := range []Submission{
		{From: "5550001", To: "5551001", Text: "x", Validity: -time.Minute},
		{From: "5550001", To: "5551001", Text: "x", UDH: []byte{5, 4, 1, 2, 3, 4}},
	} {
		if _, err := SubmitMessage(inbox, bad, now); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSubmittedPartsAreJoinedAndFindTheirMessage(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		inbox := InboxDir(filepath.Join(rg.spool, "smsrouter"))
		a, err := NewAdmin(Config{Spool: rg.spool, Location: time.UTC}, rg.journal)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 3)
		submit := func(seq int) {
			id, err := SubmitMessage(inbox, Submission{From: "5550001", To: "5551001", Text: fmt.Sprintf("part%d ", seq),
				UDH: []byte{0, 3, 0x7f, 3, byte(seq)}}, rg.clock.now())
			if err != nil {
				t.Fatal(err)
			}
			ids[seq-1] = id
			rg.clock.advance(time.Millisecond)
		}
		// Sent in reverse order, as a client may.
		submit(3)
		submit(2)
		if sp, ok, err := a.Locate(ids[1]); err != nil || !ok || sp.Where != "queued" {
			t.Fatalf("locate before drain: %+v %v %v", sp, ok, err)
		}
		rg.drain() // parts held until part 1 comes
		if sp, ok, err := a.Locate(ids[2]); err != nil || !ok || sp.Where != "held" || sp.Due.IsZero() {
			t.Fatalf("locate held: %+v %v %v", sp, ok, err)
		}
		submit(1)
		rg.drain()
		got := rg.delivered()["5551001"]
		if len(got) != 1 || got[0] != "part1 part2 part3 " {
			t.Fatalf("delivered %q", got)
		}
		rec, err := rg.journal.Get(context.Background(), ids[0])
		if err != nil || rec.State != StateDelivered {
			t.Fatalf("joined message: %+v %v", rec, err)
		}
		for _, id := range ids[1:] {
			m, err := rg.journal.PartOf(context.Background(), id)
			if err != nil || m != ids[0] {
				t.Errorf("PartOf(%s) = %q, %v", id, m, err)
			}
		}
		parts, err := rg.journal.Parts(context.Background(), ids[0])
		if err != nil || len(parts) != 2 {
			t.Fatalf("parts %v %v", parts, err)
		}
		if _, err := rg.journal.PartOf(context.Background(), ids[0]); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("part 1 is the message itself, not a part: %v", err)
		}
		if _, ok, _ := a.Locate(ids[1]); ok {
			t.Fatal("a joined part still found in the spool")
		}
	})
}

func TestListPagesAndStamps(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		ctx := context.Background()
		base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		var recs []Record
		for i := range 25 {
			at := base.Add(time.Duration(i/2) * time.Minute) // pairs share a received time
			recs = append(recs, Record{ID: fmt.Sprintf("%013d-%010x", at.UnixMilli(), i), Received: at, Updated: at.Add(time.Hour),
				OA: "5550001", DA: fmt.Sprintf("555100%d", i%3), State: StateDelivered, Detail: "{}"})
		}
		if err := rg.journal.Put(ctx, "", recs); err != nil {
			t.Fatal(err)
		}
		// Pages of 4, newest first, never a row twice or missed.
		seen := map[string]bool{}
		var after *Cursor
		var prev *Record
		for pages := 0; ; pages++ {
			page, err := rg.journal.List(ctx, Filter{Limit: 4, After: after})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if seen[r.ID] {
					t.Fatalf("%s twice", r.ID)
				}
				seen[r.ID] = true
				if prev != nil && (r.Received.After(prev.Received) || r.Received.Equal(prev.Received) && r.ID > prev.ID) {
					t.Fatalf("out of order: %s after %s", r.ID, prev.ID)
				}
				prev = &r
			}
			if len(page) < 4 {
				break
			}
			c := CursorOf(page[len(page)-1])
			after = &c
		}
		if len(seen) != 25 {
			t.Fatalf("paged through %d of 25", len(seen))
		}
		// since ≤ received < until
		got, err := rg.journal.List(ctx, Filter{Since: base.Add(2 * time.Minute), Until: base.Add(4 * time.Minute)})
		if err != nil || len(got) != 4 {
			t.Fatalf("window: %d %v", len(got), err)
		}
		got, err = rg.journal.List(ctx, Filter{Number: "5551002", State: StateDelivered})
		if err != nil || len(got) != 8 {
			t.Fatalf("number: %d %v", len(got), err)
		}
		st, err := rg.journal.Stamps(ctx, base.Add(time.Hour+11*time.Minute), 100)
		if err != nil || len(st) != 3 {
			t.Fatalf("stamps: %v %v", st, err)
		}
		many, err := rg.journal.GetMany(ctx, []string{recs[0].ID, recs[5].ID, "none"})
		if err != nil || len(many) != 2 {
			t.Fatalf("GetMany: %d %v", len(many), err)
		}
	})
}

func TestPruneRemovesOldRowsInChunks(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		ctx := context.Background()
		now := time.Now()
		old, recent := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
		var recs []Record
		mk := func(i int, at time.Time, st State, parts ...string) Record {
			r := Record{ID: fmt.Sprintf("%013d-%010x", at.UnixMilli(), i), Received: at, Updated: at, OA: "5550001", DA: "5551001",
				State: st, Detail: "{}", Try: 1, Parts: parts}
			recs = append(recs, r)
			return r
		}
		for i := range 23 {
			mk(i, old, StateDelivered)
		}
		joined := mk(100, old, StateDelivered, fmt.Sprintf("%013d-%010x", old.UnixMilli(), 101))
		stuck := mk(200, old, StateDeferred) // still being retried: kept
		fresh := mk(300, recent, StateBounced)
		if err := rg.journal.Put(ctx, "", recs); err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			if _, err := rg.store.DB.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		addReq := func(id string, created time.Time) {
			exec("INSERT INTO smsrouter_dlr (id, kind, target, mask, info, created, outcome, updated) VALUES (?, 'kannel', 'http://x/', 3, '{}', ?, '', ?)",
				id, created.UnixMilli(), created.UnixMilli())
		}
		addReq(recs[0].ID, old)
		addReq(joined.Parts[0], old)                                  // a part's request goes with its message
		addReq(fresh.ID, recent)                                      // kept with its message
		addReq(fmt.Sprintf("%013d-%010x", old.UnixMilli(), 900), old) // orphan: message never queued
		addReq(fmt.Sprintf("%013d-%010x", recent.UnixMilli(), 901), recent)

		cut := now.Add(-90 * 24 * time.Hour)
		dry, err := rg.journal.Prune(ctx, cut, 5, true)
		if err != nil {
			t.Fatal(err)
		}
		want := PruneResult{Messages: 24, Attempts: 24, Reports: 3, Parts: 1}
		if dry != want {
			t.Fatalf("dry run %+v, want %+v", dry, want)
		}
		if n, _ := rg.journal.List(ctx, Filter{}); len(n) != 26 {
			t.Fatalf("the dry run deleted: %d left", len(n))
		}
		got, err := rg.journal.Prune(ctx, cut, 5, false)
		if err != nil || got != want {
			t.Fatalf("prune %+v %v, want %+v", got, err, want)
		}
		left, _ := rg.journal.List(ctx, Filter{})
		if len(left) != 2 {
			t.Fatalf("%d rows left", len(left))
		}
		for _, id := range []string{stuck.ID, fresh.ID} {
			if _, err := rg.journal.Get(ctx, id); err != nil {
				t.Errorf("%s pruned: %v", id, err)
			}
		}
		if a, _ := rg.journal.Attempts(ctx, fresh.ID); len(a) != 1 {
			t.Errorf("fresh message lost its tries: %v", a)
		}
		var n int
		rg.store.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM smsrouter_dlr").Scan(&n)
		if n != 2 {
			t.Errorf("%d report requests left, want 2", n)
		}
		// Again: nothing more.
		if again, err := rg.journal.Prune(ctx, cut, 5, false); err != nil || again != (PruneResult{}) {
			t.Fatalf("second prune %+v %v", again, err)
		}
	})
}

func TestStatsByPlace(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	a, err := NewAdmin(Config{Spool: rg.spool, Location: time.UTC}, rg.journal)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	id := NewID(old)
	rg.inbox("5551001.smsrouter-"+id, "oa=5550001\nda=5551001\nud=x\n")
	work := filepath.Join(rg.spool, "smsrouter")
	for _, d := range []string{"stage/other.1", "rejected"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(work, "rejected", id+".bad"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(work, "rejected", id+".bad.reason"), []byte("why"), 0o644)
	s, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Incoming != 1 || s.Staged != 1 || s.Rejected != 1 || s.OldestIncoming.UnixMilli() != old.UnixMilli() || s.Oldest.UnixMilli() != old.UnixMilli() {
		t.Fatalf("%+v", s)
	}
	places := s.Places()
	if len(places) != 6 || places[0].Name != "incoming" || places[0].Count != 1 {
		t.Fatalf("%+v", places)
	}
}

func FuzzConcatUDH(f *testing.F) {
	for _, s := range [][]byte{{5, 0, 3, 1, 2, 1}, {6, 8, 4, 1, 2, 2, 2}, {6, 5, 4, 0x0b, 0x84, 0x23, 0xf0}, {}, {0}, {255}, {2, 0, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, udh []byte) {
		ies, err := ConcatUDH(udh)
		if err != nil {
			return
		}
		// What it accepts is one valid concatenation element, which the router
		// then reads as a part.
		m := smsq.Message{UDH: ies}
		_, total, seq, ok := m.Concat()
		if !ok || total < 2 || seq < 1 || seq > total || len(ies) != len(udh)-1 {
			t.Fatalf("accepted %x: %x total %d seq %d", udh, ies, total, seq)
		}
		if _, err := (&smsq.Message{OA: "1", DA: "2", DCS: -1, MR: -1, UDH: ies, HasUDH: true, Text: "x"}).Marshal(); err != nil {
			t.Fatalf("accepted %x cannot be written: %v", udh, err)
		}
	})
}
