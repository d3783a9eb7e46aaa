package router

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
)

// adoptedTable creates PBXNumbers the way an old installation may have it: no
// primary key, every column nullable, Extension even binary on MariaDB. It runs
// before Migrate, which must adopt it as it is.
func adoptedTable(t *testing.T, dsn string) *Store {
	t.Helper()
	store, err := OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ddl := `CREATE TABLE PBXNumbers (Account TEXT, Message TEXT, Extension TEXT)`
	if store.Dialect == "mysql" {
		ddl = `CREATE TABLE PBXNumbers (Account VARCHAR(32), Message VARCHAR(8), Extension VARBINARY(255))`
	}
	if _, err := store.DB.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	return store
}

// rawRow inserts a row as an admin's SQL would; nil is NULL.
func rawRow(t *testing.T, s *Store, account string, message, extension any) {
	t.Helper()
	if _, err := s.DB.Exec(`INSERT INTO PBXNumbers (Account, Message, Extension) VALUES (?, ?, ?)`, account, message, extension); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink shared by the delivery goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBadDirectoryRowsAffectOnlyTheirNumber is issue 12 item 5: one batch to good
// and broken rows of an adopted table without a key. The good messages are
// delivered; each broken one bounces with the "unreachable" notice while the
// journal and the log name the row and what is wrong with it.
func TestBadDirectoryRowsAffectOnlyTheirNumber(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		admin := adoptedTable(t, dsn)
		rawRow(t, admin, "5550001", "S", "PJSIP/5550001") // the sender: notices reach it
		rawRow(t, admin, "5551001", "S", "PJSIP/1001")
		rawRow(t, admin, "5551002", " s ", "PJSIP/1002 ") // lower case, stray blanks
		rawRow(t, admin, "5551003", nil, "PJSIP/1003")
		rawRow(t, admin, "5551004", "", "PJSIP/1004")
		rawRow(t, admin, "5551005", "X", "PJSIP/1005")
		rawRow(t, admin, "5551006", "S", "PJSIP/10\x0106")
		rawRow(t, admin, "5551007", "S", nil)
		rawRow(t, admin, "5551008", "F", "1008")
		rawRow(t, admin, "5551009", "N", nil) // N needs no Extension: an ordinary "disabled"
		rawRow(t, admin, "5551010", nil, nil) // a broken duplicate must not hide…
		rawRow(t, admin, "5551010", "S", "PJSIP/1010")
		rawRow(t, admin, "5551011", "T", "SIP/1011")
		rawRow(t, admin, "5551012", "SMS", "PJSIP/1012")
		rawRow(t, admin, "5551013", "\x00", "PJSIP/1013")

		rg := newRig(t, dsn, nil)
		logs := &syncBuffer{}
		rg.r.log = slog.New(slog.NewTextHandler(logs, nil))
		for i := 1; i <= 13; i++ {
			da := "55510" + twoDigits(i)
			rg.morx("5550001.m"+twoDigits(i), "oa=5550001\nda="+da+"\nud=hello "+da+"\n")
		}
		sum := rg.drain()

		wantDelivered := []string{"5551001", "5551002", "5551010"}
		for _, da := range wantDelivered {
			if got := rg.delivered()[da]; len(got) != 1 || got[0] != "hello "+da {
				t.Errorf("%s: delivered %q, want the one message", da, got)
			}
			if st := rg.stateOf("5550001", da); len(st) != 1 || st[0] != StateDelivered {
				t.Errorf("%s: journal %v, want delivered", da, st)
			}
		}
		bad := map[string]string{
			"5551003": "PBXNumbers row Account='5551003': Message is NULL",
			"5551004": "PBXNumbers row Account='5551004': Message is empty",
			"5551005": `PBXNumbers row Account='5551005': Message "X" is not a service letter`,
			"5551006": `PBXNumbers row Account='5551006': Extension "PJSIP/10\x0106" cannot be written into a call file: control character 0x01 at byte 8`,
			"5551007": "PBXNumbers row Account='5551007': Extension is NULL, but letter S needs one",
			"5551008": `PBXNumbers row Account='5551008': Extension "1008" is not a dialable channel Tech/dest`,
			"5551011": `PBXNumbers row Account='5551011': Extension "SIP/1011" is not a PJSIP endpoint`,
			"5551012": `PBXNumbers row Account='5551012': Message "SMS" is not a service letter`,
			"5551013": `PBXNumbers row Account='5551013': Message "\x00" is not a service letter`,
		}
		recs := rg.records()
		for da, want := range bad {
			var found bool
			for _, r := range recs {
				if r.OA != "5550001" || r.DA != da {
					continue
				}
				found = true
				if r.State != StateBounced || !strings.HasPrefix(r.LastError, want) {
					t.Errorf("%s: journal %s %q, want bounced with %q", da, r.State, r.LastError, want)
				}
				if r.Letter != "" {
					t.Errorf("%s: journal letter %q for an unusable row", da, r.Letter)
				}
			}
			if !found {
				t.Errorf("%s: no journal row", da)
			}
			if !strings.Contains(logs.String(), "PBXNumbers row Account='"+da+"'") {
				t.Errorf("%s: no log line names the row: want %q in\n%s", da, want, logs.String())
			}
		}
		if st := rg.stateOf("5550001", "5551009"); len(st) != 1 || st[0] != StateBounced {
			t.Errorf("N without an Extension: journal %v, want bounced (disabled)", st)
		}

		// The sender got one notice per bounce, each a plain sentence.
		notices := rg.delivered()["5550001"]
		sort.Strings(notices)
		var unreachable int
		for _, n := range notices {
			if strings.HasSuffix(n, ". The number is not set up to receive messages.") {
				unreachable++
			}
			for _, leak := range []string{"PBXNumbers", "NULL", "control character", "callfile", "Extension", "\x00", "\x01", "sql"} {
				if strings.Contains(n, leak) {
					t.Errorf("notice %q leaks %q", n, leak)
				}
			}
		}
		if unreachable != len(bad) || len(notices) != len(bad)+1 {
			t.Errorf("notices to the sender:\n%s\nwant %d unreachable and 1 disabled", strings.Join(notices, "\n"), len(bad))
		}
		for _, da := range []string{"5551003", "5551006", "5551013"} {
			want := "Cannot deliver SMS to " + da + ". The number is not set up to receive messages."
			var ok bool
			for _, n := range notices {
				ok = ok || n == want
			}
			if !ok {
				t.Errorf("no notice %q among %q", want, notices)
			}
		}
		if sum.Counts[StateDeferred] != 0 {
			t.Errorf("%d messages deferred: a bad row must not defer anything", sum.Counts[StateDeferred])
		}
		rg.assertIdle()
	})
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

// TestFailedNoticeCarriesNoErrorText: a channel's definite failure reaches the
// sender as the channel's sentence, never as the error's text.
func TestFailedNoticeCarriesNoErrorText(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("5550001.long", "oa=5550001\nda=5551001\nud="+strings.Repeat("x", 160*11)+"\n")
	rg.drain()
	st := rg.stateOf("5550001", "5551001")
	if len(st) != 1 || st[0] != StateBounced {
		t.Fatalf("journal %v, want bounced", st)
	}
	notices := rg.delivered()["5550001"]
	want := "Cannot deliver SMS to 5551001. The message is too long: it would need more than 10 SMS parts."
	if len(notices) != 1 || notices[0] != want {
		t.Fatalf("notice %q, want %q", notices, want)
	}
	for _, r := range rg.records() {
		if r.DA == "5551001" && !strings.Contains(r.LastError, "message too long") {
			t.Errorf("journal keeps the technical reason: %q", r.LastError)
		}
	}
}

// TestSetNumberOnAdoptedTable: `number set` on a table without a key updates the
// rows it has (all of them when the number is there twice) or inserts one, and
// refuses values the router would bounce.
func TestSetNumberOnAdoptedTable(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		admin := adoptedTable(t, dsn)
		rawRow(t, admin, "5551001", nil, nil)
		rawRow(t, admin, "5551002", "S", "PJSIP/1002")
		rawRow(t, admin, "5551002", "F", "PJSIP/fax")
		if _, err := admin.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		count := func(n string) int {
			var c int
			if err := admin.DB.QueryRow(`SELECT COUNT(*) FROM PBXNumbers WHERE Account = ?`, n).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		dir := NewSQLDirectory(admin)
		for _, c := range []struct {
			number, letter, ext string
			updated, rows       int
			want                Entry
		}{
			{"5551001", "s", "PJSIP/1001", 1, 1, Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}},
			{"5551001", "s", "PJSIP/1001", 1, 1, Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}}, // unchanged: still no second row
			{"5551002", "V", "PJSIP/1002", 2, 2, Entry{Number: "5551002", Letter: 'V', Extension: "PJSIP/1002"}},
			{"5551003", "T", "PJSIP/alice", 0, 1, Entry{Number: "5551003", Letter: 'T', Extension: "PJSIP/alice"}},
			{"5551004", "C", "-", 0, 1, Entry{Number: "5551004", Letter: 'C', Extension: "-"}},
		} {
			updated, err := admin.SetNumber(ctx, c.number, c.letter, c.ext)
			if err != nil || updated != c.updated {
				t.Fatalf("SetNumber(%s %s %s) = %d, %v; want %d updated", c.number, c.letter, c.ext, updated, err, c.updated)
			}
			if n := count(c.number); n != c.rows {
				t.Errorf("%s: %d rows, want %d", c.number, n, c.rows)
			}
			got, err := dir.Lookup(ctx, c.number)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("lookup %s = %+v, %v; want %+v", c.number, got, err, c.want)
			}
		}
		for _, c := range []struct{ number, letter, ext, want string }{
			{"5551005", "S", "PJSIP/1\x01", "control character 0x01"},
			{"5551005", "S", "PJSIP/1\nApplication: System", "control character 0x0a"},
			{"5551005", "S", "", "Extension is empty"},
			{"5551005", "F", "1005", "not a dialable channel"},
			{"5551005", "T", "Local/1005@x", "not a PJSIP endpoint"},
			{"5551005", "X", "PJSIP/1005", "not a service letter"},
			{"5551005", "", "PJSIP/1005", "Message is empty"},
			{"5551005", "SMS", "PJSIP/1005", "not a service letter"},
			{"../x", "S", "PJSIP/1005", "not a phone number"},
		} {
			_, err := admin.SetNumber(ctx, c.number, c.letter, c.ext)
			if !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("SetNumber(%q %q %q) = %v; want ErrBadEntry saying %q", c.number, c.letter, c.ext, err, c.want)
			}
		}
		if n := count("5551005"); n != 0 {
			t.Errorf("refused values were stored: %d rows", n)
		}
	})
}

func TestParseEntry(t *testing.T) {
	for _, c := range []struct {
		msg, ext string
		want     Entry
		err      string
	}{
		{"S", "PJSIP/1001", Entry{Number: "1", Letter: 'S', Extension: "PJSIP/1001"}, ""},
		{" f ", " Local/2001@fax ", Entry{Number: "1", Letter: 'F', Extension: "Local/2001@fax"}, ""},
		{"v", "DAHDI/1", Entry{Number: "1", Letter: 'V', Extension: "DAHDI/1"}, ""},
		{"t", "pjsip/alice", Entry{Number: "1", Letter: 'T', Extension: "pjsip/alice"}, ""},
		{"C", "", Entry{Number: "1", Letter: 'C'}, ""},
		{"n", "anything\x01", Entry{Number: "1", Letter: 'N', Extension: "anything\x01"}, ""},
		{"ſ", "PJSIP/1", Entry{}, "not a service letter"}, // ToUpper would make it S
		{"", "PJSIP/1", Entry{}, "Message is empty"},
		{"S", "PJSIP/1 #2", Entry{}, "'#' after a blank"},
		{"S", "PJSIP/", Entry{}, "not a dialable channel"},
		{"S", "PJSIP/\xff", Entry{}, "not valid UTF-8"},
		{"T", "PJSIP/a@b", Entry{}, "endpoint name may only hold"},
		{"T", "PJSIP/" + strings.Repeat("a", 65), Entry{}, "longer than 64"},
	} {
		got, err := ParseEntry("1", c.msg, c.ext)
		if c.err == "" {
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseEntry(%q, %q) = %+v, %v; want %+v", c.msg, c.ext, got, err, c.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ParseEntry(%q, %q) = %v; want ErrBadEntry saying %q", c.msg, c.ext, err, c.err)
		}
	}
}

// FuzzParseEntry: whatever a row holds, an accepted entry is one its channel can
// use: a call file dialling it reads back the same Channel, a T endpoint is plain.
func FuzzParseEntry(f *testing.F) {
	for _, s := range [][2]string{{"S", "PJSIP/1001"}, {"t", "PJSIP/a"}, {"F", "Local/1@x"}, {"V", "PJSIP/1 #x"}, {"X", ""}, {"S", "a/b\nc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, msg, ext string) {
		e, err := ParseEntry("1", msg, ext)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) || !utf8.ValidString(err.Error()) && utf8.ValidString(msg+ext) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !strings.ContainsRune(Letters, rune(e.Letter)) {
			t.Fatalf("letter %q accepted", e.Letter)
		}
		switch e.Letter {
		case 'S', 'F', 'V':
			cf := callfile.CallFile{Channel: e.Extension, Application: "SMS", Data: "1,s"}
			data, err := cf.Marshal()
			if err != nil {
				t.Fatalf("accepted %q but the call file refuses it: %v", e.Extension, err)
			}
			rec, err := callfile.Parse(data)
			if err != nil || rec.Channel != e.Extension {
				t.Fatalf("accepted %q but pbx_spool would read %q (%v)", e.Extension, rec.Channel, err)
			}
		case 'T':
			if _, err := channels.PJSIPEndpoint(e.Extension); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLetterDirectoryAnswersAsTheRouters: chaninfo's directory reads PBXNumbers
// alone, and gives every number (good, broken, duplicated, with further ways,
// unknown) the letter, Extension and Problem the router's lookup gives it.
func TestLetterDirectoryAnswersAsTheRouters(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		admin := adoptedTable(t, dsn)
		rawRow(t, admin, "5551001", "S", "PJSIP/1001")
		rawRow(t, admin, "5551002", " s ", "PJSIP/1002 ")
		rawRow(t, admin, "5551003", nil, "PJSIP/1003")
		rawRow(t, admin, "5551004", "X", "PJSIP/1004")
		rawRow(t, admin, "5551005", "S", nil)
		rawRow(t, admin, "5551006", nil, nil) // a broken duplicate before…
		rawRow(t, admin, "5551006", "S", "PJSIP/1006")
		rawRow(t, admin, "5551007", "S", "PJSIP/1007") // …and after a good row
		rawRow(t, admin, "5551007", "", "PJSIP/1007")
		rawRow(t, admin, "5551008", "S", "PJSIP/1008")
		ctx := context.Background()
		if _, err := admin.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := admin.SetWays(ctx, "5551008", []NumberWay{{Letter: 'V', Extension: "PJSIP/1008"}}); err != nil {
			t.Fatal(err)
		}
		numbers := []string{"5551001", "5551002", "5551003", "5551004", "5551005", "5551006", "5551007", "5551008", "5559999"}
		want, err := NewSQLDirectory(admin).LookupMany(ctx, numbers)
		if err != nil {
			t.Fatal(err)
		}
		if len(want["5551008"].Further) != 1 {
			t.Fatalf("the router's lookup lost the further way: %+v", want["5551008"])
		}
		got, err := NewSQLLetterDirectory(admin).LookupMany(ctx, numbers)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%d entries, the router's lookup has %d", len(got), len(want))
		}
		for n, w := range want {
			g := got[n]
			if g.Number != w.Number || g.Letter != w.Letter || g.Extension != w.Extension || g.Problem != w.Problem {
				t.Errorf("%s: %+v, the router's lookup gives %+v", n, g, w)
			}
			if g.Further != nil {
				t.Errorf("%s: further ways %+v read though chaninfo never uses them", n, g.Further)
			}
		}
		if _, err := NewSQLLetterDirectory(admin).Lookup(ctx, "5559999"); !errors.Is(err, ErrUnknownNumber) {
			t.Errorf("unknown number: %v, want ErrUnknownNumber", err)
		}
	})
}
