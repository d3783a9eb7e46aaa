package smslog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseFixture(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", "smslog", "sms.log"))
	if err != nil {
		t.Fatal(err)
	}
	es, skipped := Parse(data, time.UTC)
	if skipped != 0 {
		t.Errorf("skipped %d", skipped)
	}
	if len(es) < 30 {
		t.Fatalf("only %d entries", len(es))
	}
	first := es[0]
	if first.Time != time.Date(2026, 11, 21, 5, 39, 34, 0, time.UTC) || first.Status != 'Y' || first.Direction != 'I' ||
		first.Role != 'S' || first.MR != 0 || first.Queue != "5550001" || first.OA != "5550001" || first.DA != "5559999" ||
		string(first.Text) != "Hello World from an FSK phone" || first.Glued {
		t.Fatalf("first entry %+v", first)
	}
	// The emoji message's surrogate cut the line: the next entry is glued on.
	var glued []Entry
	for _, e := range es {
		if e.Glued {
			glued = append(glued, e)
		}
	}
	if len(glued) != 4 || glued[0].Queue != "5550003" || glued[0].Direction != 'O' || glued[0].Role != 'M' || glued[0].MR != 2 {
		t.Fatalf("glued %+v", glued)
	}
	var last Entry
	for _, e := range es {
		if e.Direction == 'O' && e.Role == 'S' {
			last = e // app_sms as SMSC sending to a phone: the first is "Hello"
			break
		}
	}
	if !last.Sent() || last.Role != 'S' || last.Queue != "0" || last.OA != "5551234" || last.DA != "" || last.MR != -1 || string(last.Text) != "Hello" {
		t.Fatalf("last entry %+v", last)
	}
}

func TestParseTable(t *testing.T) {
	for _, c := range []struct {
		name            string
		in              string
		n, skipped      int
		status, dir     byte
		mr              int
		queue, oa, text string
	}{
		{"plain", "2026-01-02T03:04:05 NOS1F q - 555 hi there\n", 1, 0, 'N', 'O', 0x1f, "q", "", "hi there"},
		{"incomplete no mr", "2026-01-02T03:04:05 ?IM 7 1 2 \n", 1, 0, '?', 'I', -1, "7", "1", ""},
		{"garbage first", "junk\n2026-01-02T03:04:05 YIS00 q 1 2 t\n", 1, 1, 'Y', 'I', 0, "q", "1", "t"},
		{"bad mr", "2026-01-02T03:04:05 YISZZ q 1 2 t\n", 0, 1, 0, 0, 0, "", "", ""},
		{"three-digit mr", "2026-01-02T03:04:05 YIS123 q 1 2 t\n", 0, 1, 0, 0, 0, "", "", ""},
		{"missing fields", "2026-01-02T03:04:05 YIS00 q\n", 0, 1, 0, 0, 0, "", "", ""},
		{"date in text is not an entry", "2026-01-02T03:04:05 YIS00 q 1 2 see 2026-01-02T03:04:05 tomorrow\n", 1, 0, 'Y', 'I', 0, "q", "1", "see 2026-01-02T03:04:05 tomorrow"},
		{"latin bytes kept", "2026-01-02T03:04:05 YIS00 q 1 2 \xbf\xff\n", 1, 0, 'Y', 'I', 0, "q", "1", "\xbf\xff"},
		{"empty", "", 0, 0, 0, 0, 0, "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			es, skipped := Parse([]byte(c.in), time.UTC)
			if len(es) != c.n || skipped != c.skipped {
				t.Fatalf("got %d entries (%+v), %d skipped; want %d, %d", len(es), es, skipped, c.n, c.skipped)
			}
			if c.n == 0 {
				return
			}
			e := es[0]
			if e.Status != c.status || e.Direction != c.dir || e.MR != c.mr || e.Queue != c.queue || e.OA != c.oa || string(e.Text) != c.text {
				t.Fatalf("entry %+v", e)
			}
		})
	}
}

func TestLatin1(t *testing.T) {
	if got := Latin1([]byte("Za|\xf3")); got != "Za|ó" {
		t.Fatalf("%q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("2026-11-21T05:39:34 YIS00 5550001 5550001 5559999 Hello\n"))
	f.Add([]byte("2026-11-21T05:40:12 YIS02 5550003 5550003 5559999 Za =2026-11-21T05:40:12 YOM02 5550003 - 5559999 x\n"))
	f.Add([]byte("2026-11-21T05:41:07 YOS 0 5551234 - Hello\n\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, skipped := Parse(data, time.UTC)
		if skipped < 0 || len(es) > len(data)/(stampLen+4)+1 {
			t.Fatalf("%d entries, %d skipped from %d bytes", len(es), skipped, len(data))
		}
		for _, e := range es {
			if e.Status != 'Y' && e.Status != 'N' && e.Status != '?' || e.Queue == "" || e.MR < -1 || e.MR > 255 {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
