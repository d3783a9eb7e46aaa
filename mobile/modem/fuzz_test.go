package modem

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseLines(t *testing.T) {
	if got := parseCSCA([]string{`+CSCA: "+48790998250",145`}); got != "+48790998250" {
		t.Errorf("CSCA %q", got)
	}
	if got := parseCSCA([]string{`+CSCA: "",129`}); got != "" {
		t.Errorf("empty CSCA %q", got)
	}
	for _, tt := range []struct {
		line string
		want int
	}{{"+CREG: 0,1", 1}, {"+CREG: 2,5,\"00C3\",\"A1B2\",7", 5}, {"+CREG: 1", -1}, {"+CREG: 0,x", -1}} {
		if got := parseReg([]string{tt.line}, "+CREG:"); got != tt.want {
			t.Errorf("%q: %d, want %d", tt.line, got, tt.want)
		}
	}
	for _, tt := range []struct {
		line string
		want int
	}{{"+CSQ: 17,99", 17}, {"+CSQ: 99,99", 99}, {"+CSQ: 45,0", 99}, {"junk", 99}} {
		if got := parseCSQ([]string{tt.line}); got != tt.want {
			t.Errorf("%q: %d, want %d", tt.line, got, tt.want)
		}
	}
	if mem, i, ok := parseCMTI(` "SM",12`); !ok || mem != "SM" || i != 12 {
		t.Errorf("CMTI %q %d %v", mem, i, ok)
	}
	if _, _, ok := parseCMTI(` "SM",-1`); ok {
		t.Error("negative index accepted")
	}
	if mr, ok := parseCMGS([]string{"+CMTI: \"SM\",1", "+CMGS: 7"}); !ok || mr != 7 {
		t.Errorf("CMGS %d %v", mr, ok)
	}
}

func TestParseListing(t *testing.T) {
	lines := []string{
		`+CMGL: 0,1,,24`, "0791448720003023040C91448760111222000052304011211200044C6137",
		`+CMTI: "SM",4`, // slipped in between entries
		`+CMGL: 3,0,"",5`, "00AABB",
	}
	l, err := parseListing(lines, "+CMGL:", 0)
	if err != nil || len(l) != 2 || l[0].index != 0 || l[0].stat != 1 || l[0].length != 24 || l[1].index != 3 || l[1].pdu != "00AABB" {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := parseListing([]string{"+CMGL: 1,0,,5"}, "+CMGL:", 0); err == nil {
		t.Error("entry without a PDU line accepted")
	}
	m, err := parseListing([]string{"+CMGR: 0,,5", "00AABB"}, "+CMGR:", 9)
	if err != nil || len(m) != 1 || m[0].index != 9 {
		t.Fatalf("CMGR %+v %v", m, err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, tt := range []struct {
		name, pdu string
		length    int
		why       string
	}{
		{"not hex", "ZZ", -1, "hexadecimal"},
		{"truncated", "0791448720003023040C9144", -1, "TPDU"},
		{"length mismatch", "0791448720003023040C91448760111222000052304011211200044C6137", 3, "announced"},
		{"SMSC length beyond", "FF00", -1, "PDU"},
	} {
		m := decodeMessage(tt.pdu, tt.length)
		if m.Malformed == nil || !strings.Contains(m.Malformed.Error(), tt.why) || m.Fingerprint == "" {
			t.Errorf("%s: %v", tt.name, m.Malformed)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add("0791448720003023040C91448760111222000052304011211200044C6137", 24)
	f.Add("00060A0C914487601112225230401121120052304011221200", -1)
	f.Add("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", -1)
	f.Fuzz(func(t *testing.T, pdu string, length int) {
		m := decodeMessage(pdu, length)
		if m.Fingerprint == "" {
			t.Fatal("no fingerprint")
		}
		if m.Malformed == nil {
			if !utf8.ValidString(m.Text) {
				t.Fatal("text is not UTF-8")
			}
			if (m.Kind == StatusReport) != (m.Report != nil) {
				t.Fatal("report and kind disagree")
			}
		}
	})
}

func FuzzParseListing(f *testing.F) {
	f.Add("+CMGL: 0,1,,24\n0791448720003023040C91448760111222000052304011211200044C6137\n+CMGL: 3,0,\"\",5\n00AABB", true)
	f.Add("+CMGR: 0,,5\n00AABB", false)
	f.Fuzz(func(t *testing.T, text string, list bool) {
		prefix := "+CMGR:"
		if list {
			prefix = "+CMGL:"
		}
		ls, _ := parseListing(strings.Split(text, "\n"), prefix, 1)
		for _, l := range ls {
			_ = decodeMessage(l.pdu, l.length)
		}
	})
}

func FuzzParseLines(f *testing.F) {
	for _, s := range []string{`+CSCA: "+48790998250",145`, "+CREG: 0,1", "+CSQ: 17,99", `+CMTI: "SM",3`, "+CMGS: 12"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if n := parseCSCA([]string{line}); n != "" && !validNumber(n) {
			t.Fatalf("CSCA gave %q", n)
		}
		if r := parseReg([]string{line}, "+CREG:"); r < -1 || r > 10 {
			t.Fatalf("CREG gave %d", r)
		}
		if q := parseCSQ([]string{line}); q < 0 || (q > 31 && q != 99) {
			t.Fatalf("CSQ gave %d", q)
		}
		if len(line) > 7 {
			if _, i, ok := parseCMTI(line[6:]); ok && i < 0 {
				t.Fatalf("CMTI gave %d", i)
			}
		}
		if mr, ok := parseCMGS([]string{line}); ok && (mr < 0 || mr > 255) {
			t.Fatalf("CMGS gave %d", mr)
		}
	})
}
