package smsq

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// fixturesDir is the repository's copy of the files captured from a real
// Asterisk 22 (testdata/asterisk at the module root). A missing tree fails
// the test: these files are the ground truth this package is built on.
func fixturesDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "asterisk")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("fixtures not found in %s: %v", dir, err)
	}
	return dir
}

// fixtureFile returns the single queue file in fixtures/<dir>.
func fixtureFile(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(fixturesDir(t), dir))
	if err != nil {
		t.Fatalf("read fixture dir: %v", err)
	}
	if len(entries) != 1 || entries[0].IsDir() {
		t.Fatalf("fixture dir %s: want exactly one file, have %d entries", dir, len(entries))
	}
	return filepath.Join(fixturesDir(t), dir, entries[0].Name())
}

// msg builds an expected Message with the "absent" defaults filled in.
func msg(f func(m *Message)) *Message {
	m := &Message{DCS: -1, MR: -1}
	f(m)
	return m
}

func at(s string) time.Time {
	t, err := time.ParseInLocation(sctsLayout, s, time.UTC)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	concatText = "This is part one of a long concatenated SMS message sent from an analogue FSK phone. " +
		"This is part one of a long concatenated SMS message sent from an ana"
	binaryText  = "\x00\x01\x02\x7f\u0080\u00fe\u00ffA"
	polishLong  = "Zażółć gęślą jaźń ĄĘŁŃÓŚŹŻ"
	polishShort = "Zażółć gęślą jaźń"
	escapesText = "Price 5€ [x] {y} ~ ^ | \\ @£$¥èéùìòØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
	emojiText   = "Zażółć gęślą 😀 emoji ✓"
	ucs1Text    = "Line one\nLine two\ttab"
	ucs2Text    = "Cześć\nświecie"
	mtUCS2Text  = "Zażółć gęślą jaźń – ‘cudzysłów’ €"
	mtEmojiText = "Emoji 😀 via UTF-16 surrogates"
	// What app_sms 22.10.1 -O3 made of a UTF-8 ud= line: each letter followed
	// by its continuation bytes as Latin-1 characters.
	mangledO3 = "Zaż\u00bcó\u00b3ł\u0082ć\u0087 gę\u0099ś\u009blą\u0085 jaź\u00bań\u0084"
	// The same line through the -O0 build of the same source.
	mangledO0 = "Zż\u00b3\u0082\u0087g\u0099\u009bąjź\u0084"
)

// goldenFixtures lists the expected decoding of every queue file under
// fixtures/{morx,mttx,mtrx,motx}. TestFixturesGolden fails when a fixture
// directory is missing from this table, so new captures must be added here.
var goldenFixtures = map[string]*Message{
	// morx: written by app_sms as SMSC after a real FSK SUBMIT.
	"morx/O0build_raw_ascii_ud_line": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550013", "5559999", "HloWrdACI", at("2026-11-21T05:46:56"), 0
	}),
	"morx/O0build_raw_utf8_ud_line": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550014", "5559999", mangledO0, at("2026-11-21T05:46:58"), 8, 1
	}),
	"morx/binary_8bit_dcs4": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550010", "5559999", binaryText, at("2026-11-21T05:40:47"), 4, 12
	}),
	"morx/concat_part1": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550004", "5559999", concatText, at("2026-11-21T05:40:28"), 5
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xA7, 0x02, 0x01}, true
	}),
	"morx/concat_part2": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550004", "5559999", "...and this is part two, the end.", at("2026-11-21T05:40:30"), 6
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xA7, 0x02, 0x02}, true
	}),
	"morx/control_chars_ucs1": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550007", "5559999", ucs1Text, at("2026-11-21T05:40:38"), 245, 9
	}),
	"morx/control_chars_ucs2": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550008", "5559999", ucs2Text, at("2026-11-21T05:40:42"), 8, 10
	}),
	"morx/emoji_surrogates": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550003", "5559999", emojiText, at("2026-11-21T05:40:12"), 8, 2
	}),
	"morx/gsm7_escapes": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550011", "5559999", escapesText, at("2026-11-21T05:40:53"), 13
	}),
	"morx/pitfall_udh_incl_udhl_truncated": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550004", "5559999", concatText[:152], at("2026-11-21T05:40:17"), 3
		m.UDH, m.HasUDH = []byte{0x05, 0x00, 0x03, 0xA7, 0x02, 0x01}, true
	}),
	"morx/plain_ascii": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550001", "5559999", "Hello World from an FSK phone", at("2026-11-21T05:39:34"), 0
	}),
	"morx/polish_ucs2": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550002", "5559999", polishLong, at("2026-11-21T05:40:08"), 8, 1
	}),
	"morx/raw_utf8_ud_line": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.DCS, m.MR = "5550012", "5559999", mangledO3, at("2026-11-21T05:40:58"), 8, 14
	}),
	"morx/rp_vp_pid": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR = "5550006", "+48601234567", "Reply path and validity", at("2026-11-21T05:40:36"), 8
		m.VP, m.RP = 1440, true
	}),
	"morx/status_report_request": msg(func(m *Message) {
		m.OA, m.DA, m.Text, m.SCTS, m.MR, m.SRR = "5550005", "5559999", "Please confirm delivery", at("2026-11-21T05:40:34"), 7, true
	}),

	// mttx: written by smsq --mt --tx.
	"mttx/all_fields": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS = "+4915112345678", "All optional fields", at("2025-06-30T23:59:58")
		m.PID, m.DCS, m.MR, m.SRR, m.RP, m.VP = 0, 0, 7, true, true, 60
	}),
	"mttx/plain": msg(func(m *Message) { m.OA, m.Text = "5551234", "Hello" }),
	"mttx/scts_mr": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS, m.MR = "5551234", "With scts and mr", at("2024-01-02T03:04:05"), 42
	}),
	"mttx/ucs2":                  msg(func(m *Message) { m.OA, m.Text = "5551234", mtUCS2Text }),
	"mttx/ucs2_emoji_surrogates": msg(func(m *Message) { m.OA, m.Text = "5551234", mtEmojiText }),
	"mttx/udh_nodial": msg(func(m *Message) {
		m.OA, m.Text = "5551234", "Concatenated part 1 queued with --no-dial"
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xB7, 0x02, 0x01}, true
	}),

	// mtrx: written by app_sms as phone after a real FSK DELIVER.
	"mtrx/all_fields": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS, m.DCS = "+4915112345678", "All optional fields", at("2026-11-21T05:41:24"), 0
	}),
	"mtrx/plain":   msg(func(m *Message) { m.OA, m.Text, m.SCTS = "5551234", "Hello", at("2026-11-21T05:41:07") }),
	"mtrx/scts_mr": msg(func(m *Message) { m.OA, m.Text, m.SCTS = "5551234", "With scts and mr", at("2026-11-21T05:41:22") }),
	"mtrx/ucs2": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS, m.DCS = "5551234", mtUCS2Text, at("2026-11-21T05:41:12"), 8
	}),
	"mtrx/ucs2_emoji_surrogates": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS, m.DCS = "5551234", mtEmojiText, at("2026-11-21T05:41:14"), 8
	}),
	"mtrx/udh_nodial": msg(func(m *Message) {
		m.OA, m.Text, m.SCTS = "5551234", "Concatenated part 1 queued with --no-dial", at("2026-11-21T05:41:19")
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xB7, 0x02, 0x01}, true
	}),

	// motx: smsq --mo --tx output, and hand-written (raw) inputs.
	"motx/O0build_raw_ascii_ud_line": msg(func(m *Message) { m.DA, m.Text = "5559999", "Hello World ASCII" }),
	"motx/O0build_raw_utf8_ud_line":  msg(func(m *Message) { m.DA, m.Text = "5559999", polishShort }),
	"motx/binary_8bit_dcs4":          msg(func(m *Message) { m.DA, m.Text, m.DCS = "5559999", binaryText, 4 }),
	"motx/concat_part1": msg(func(m *Message) {
		m.DA, m.Text = "5559999", concatText
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xA7, 0x02, 0x01}, true
	}),
	"motx/concat_part2": msg(func(m *Message) {
		m.DA, m.Text = "5559999", "...and this is part two, the end."
		m.UDH, m.HasUDH = []byte{0x00, 0x03, 0xA7, 0x02, 0x02}, true
	}),
	"motx/control_chars_ucs1": msg(func(m *Message) { m.DA, m.Text = "5559999", ucs1Text }),
	"motx/control_chars_ucs2": msg(func(m *Message) { m.DA, m.Text = "5559999", ucs2Text }),
	"motx/emoji_surrogates":   msg(func(m *Message) { m.DA, m.Text = "5559999", emojiText }),
	"motx/gsm7_escapes":       msg(func(m *Message) { m.DA, m.Text = "5559999", escapesText }),
	"motx/pitfall_udh_incl_udhl_truncated": msg(func(m *Message) {
		m.DA, m.Text = "5559999", concatText
		m.UDH, m.HasUDH = []byte{0x05, 0x00, 0x03, 0xA7, 0x02, 0x01}, true
	}),
	"motx/plain_ascii":      msg(func(m *Message) { m.DA, m.Text = "5559999", "Hello World from an FSK phone" }),
	"motx/polish_ucs2":      msg(func(m *Message) { m.DA, m.Text = "5559999", polishLong }),
	"motx/raw_utf8_ud_line": msg(func(m *Message) { m.DA, m.Text = "5559999", polishShort }),
	"motx/rp_vp_pid": msg(func(m *Message) {
		m.DA, m.Text, m.RP, m.VP = "+48601234567", "Reply path and validity", true, 1440
	}),
	"motx/status_report_request": msg(func(m *Message) { m.DA, m.Text, m.SRR = "5559999", "Please confirm delivery", true }),
}

func TestFixturesGolden(t *testing.T) {
	root := fixturesDir(t)
	var dirs []string
	for _, q := range []string{"morx", "mttx", "mtrx", "motx"} {
		entries, err := os.ReadDir(filepath.Join(root, q))
		if err != nil {
			t.Fatalf("read %s: %v", q, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, q+"/"+e.Name())
			}
		}
	}
	if len(dirs) != len(goldenFixtures) {
		t.Errorf("fixtures on disk: %d, golden table: %d", len(dirs), len(goldenFixtures))
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			want, ok := goldenFixtures[dir]
			if !ok {
				t.Fatalf("fixture %s has no entry in goldenFixtures", dir)
			}
			data, err := os.ReadFile(fixtureFile(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data, time.UTC)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.SCTS.Equal(want.SCTS) {
				t.Errorf("SCTS = %v, want %v", got.SCTS, want.SCTS)
			}
			g, w := *got, *want
			g.SCTS, w.SCTS = time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("Parse mismatch\n got %+v\nwant %+v", g, w)
			}
			if got.Text != want.Text {
				t.Errorf("Text = %q, want %q", got.Text, want.Text)
			}
		})
	}
}

// TestFixturesLocalTime checks that scts is read in the given location.
func TestFixturesLocalTime(t *testing.T) {
	data, err := os.ReadFile(fixtureFile(t, "morx/plain_ascii"))
	if err != nil {
		t.Fatal(err)
	}
	warsaw := time.FixedZone("CET", 3600)
	m, err := Parse(data, warsaw)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 21, 4, 39, 34, 0, time.UTC); !m.SCTS.Equal(want) {
		t.Errorf("SCTS = %v, want %v", m.SCTS.UTC(), want)
	}
}

// TestFixturesSmsqDump compares Parse with smsq's own decoding of three morx
// files (smsq --process exports the text as ud16 hex, among others).
func TestFixturesSmsqDump(t *testing.T) {
	root := fixturesDir(t)
	f, err := os.Open(filepath.Join(root, "morx", "smsq_process_env_dump.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "----") {
			blocks = append(blocks, map[string]string{})
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || len(blocks) == 0 {
			continue // continuation of a value that held a newline
		}
		blocks[len(blocks)-1][k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("dump has %d blocks, want 3", len(blocks))
	}
	byKey := map[string]*Message{}
	for dir := range goldenFixtures {
		if !strings.HasPrefix(dir, "morx/") {
			continue
		}
		data, err := os.ReadFile(fixtureFile(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(data, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		byKey[m.OA+"/"+m.SCTS.Format(sctsLayout)] = m
	}
	for _, b := range blocks {
		m := byKey[b["oa"]+"/"+b["scts"]]
		if m == nil {
			t.Errorf("no morx fixture for dump block oa=%s scts=%s", b["oa"], b["scts"])
			continue
		}
		raw, err := hex.DecodeString(b["ud16"])
		if err != nil || len(raw)%2 != 0 {
			t.Fatalf("bad ud16 in dump: %v", err)
		}
		units := make([]uint16, len(raw)/2)
		for i := range units {
			units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		if want := string(utf16.Decode(units)); m.Text != want {
			t.Errorf("oa=%s: Text = %q, smsq decoded %q", m.OA, m.Text, want)
		}
		if m.DA != b["da"] {
			t.Errorf("oa=%s: DA = %q, smsq %q", m.OA, m.DA, b["da"])
		}
		wantDCS := "-1"
		if d, ok := b["dcs"]; ok {
			wantDCS = d
		}
		if got := strconv.Itoa(m.DCS); got != wantDCS {
			t.Errorf("oa=%s: DCS = %s, smsq %s", m.OA, got, wantDCS)
		}
		if got := strconv.Itoa(m.MR); got != b["mr"] {
			t.Errorf("oa=%s: MR = %s, smsq %s", m.OA, got, b["mr"])
		}
		if ud8, ok := b["ud8"]; ok {
			raw, err := hex.DecodeString(ud8)
			if err != nil {
				t.Fatal(err)
			}
			if want := latin1(raw); m.Text != want {
				t.Errorf("oa=%s: Text = %q, smsq ud8 %q", m.OA, m.Text, want)
			}
		}
	}
}

// TestMarshalMatchesSmsq re-writes every mttx fixture and checks that every
// line but the text is exactly what smsq wrote (same keys, same order), and
// that the text line is in a hex form that parses back to the same text.
func TestMarshalMatchesSmsq(t *testing.T) {
	for dir := range goldenFixtures {
		if !strings.HasPrefix(dir, "mttx/") {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			data, err := os.ReadFile(fixtureFile(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			want := nonTextLines(data)
			// smsq writes pid whenever it was given; we leave out the default 0.
			want = slices.DeleteFunc(want, func(l string) bool { return l == "pid=0" })
			if got := nonTextLines(out); !reflect.DeepEqual(got, want) {
				t.Errorf("non-text lines differ\n got %q\nwant %q", got, want)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ud#") {
				t.Errorf("text line %q is not in a hex form", last)
			}
			back, err := Parse(out, time.UTC)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v", err)
			}
			if back.Text != m.Text {
				t.Errorf("round trip text %q, want %q", back.Text, m.Text)
			}
		})
	}
}

func nonTextLines(data []byte) []string {
	var out []string
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if !bytes.HasPrefix(l, []byte("ud=")) && !bytes.HasPrefix(l, []byte("ud#")) {
			out = append(out, string(l))
		}
	}
	return out
}
