package callfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	// Seeds: the captured fixtures plus the edge cases of the comment rules.
	_ = filepath.WalkDir(fixtureDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "README.md" {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Add([]byte("Channel: a/b\nApplication: A\nData: x\\;y #c ;d\nSetvar: __V= v\\\\;\n"))
	f.Add([]byte("Channel: a/b\nApplication: SendFax\nData: /f.tif\nSetvar: FAXOPT(ecm)=yes\nSetvar: A(b)c=1\n"))
	f.Add([]byte("channel:a/b\r\nextension:s\r\npriority: 3x\r\nStartRetry: 1 2 (3)\nStatus: Failed"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		_ = r.InProgress()
		_ = r.Retries()
		b, err := r.Marshal()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal error %v does not wrap ErrInvalid", err)
			}
			return
		}
		r2, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse of Marshal output failed: %v\n%q", err, b)
		}
		if d := diffCallFile(&r2.CallFile, &r.CallFile); d != "" {
			t.Fatalf("re-parse differs: %s\nfirst: %q\nmarshalled: %q", d, data, b)
		}
		if len(r2.Unknown) != 0 || len(r2.Attempts) != 0 || r2.Status != "" {
			t.Fatalf("Marshal output has extra lines: %q", b)
		}
	})
}

func FuzzMarshal(f *testing.F) {
	f.Add("Local/1000@phones", "SMS <9001>", "SMS", "1000,s", "", "", "", "", "", "__RECFILE", "/x", 10, 100, 30, false, false, int8(-1))
	f.Add("PJSIP/1000", `"A;b" <1>`, "", "", "ctx", "s", "2", "acct", "ulaw", "V", " #v;", 0, 0, 0, true, true, int8(0))
	f.Add("Local/x", "", "App", "1000\nApplication: System", "", "", "", "", "", "X", "a #b", -1, 0, 0, false, false, int8(1))
	f.Add("a/b", "", "A", `a\;b`, "", "", "", "", "", "A=B", "", 0, 0, 0, false, false, int8(1))
	f.Fuzz(func(t *testing.T, channel, callerID, app, data, context, exten, priority, account, codecs, varName, varValue string,
		wait, maxRetries, retry int, archive, earlyMedia bool, alwaysDelete int8) {
		c := CallFile{
			Channel: channel, CallerID: callerID, Application: app, Data: data,
			Context: context, Extension: exten, Priority: priority,
			WaitTime: wait, MaxRetries: maxRetries, RetryTime: retry,
			Account: account, Codecs: codecs, Archive: archive, EarlyMedia: earlyMedia,
		}
		if alwaysDelete >= 0 {
			c.AlwaysDelete = new(alwaysDelete > 0)
		}
		if varName != "" {
			c.Vars = []Var{{varName, varValue}, {"SECOND", varValue}}
		}
		b, err := c.Marshal()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || b != nil {
				t.Fatalf("Marshal error %v: not a *FieldError or bytes returned", err)
			}
			return
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(line) > MaxLine {
				t.Fatalf("line of %d bytes: %q", len(line), line)
			}
		}
		r, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse of Marshal output failed: %v\n%q", err, b)
		}
		if d := diffCallFile(&r.CallFile, &c); d != "" {
			t.Fatalf("round trip differs: %s\n%q", d, b)
		}
		if len(r.Unknown) != 0 || len(r.Attempts) != 0 || r.Status != "" {
			t.Fatalf("Marshal output has lines pbx_spool ignores: %q in %q", r.Unknown, b)
		}
	})
}

var benchCallFile = CallFile{
	Channel: "Local/rec@voice", CallerID: `"Voice test" <5551234>`, Application: "Playback",
	Data: "/var/spool/voice/hello8k", WaitTime: 10, MaxRetries: 2, RetryTime: 60, Archive: true,
	Vars: []Var{{"__RECFILE", "/var/spool/voice/rec/wav8k"}, {"MSGID", "01HZX3;A"}},
}

func BenchmarkMarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchCallFile.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := benchCallFile.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	data = append(data, "\nStartRetry: 14546 1 (1795240131)\nStatus: Completed\n"...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlace(b *testing.B) {
	out, tmp := spoolDirs(b)
	data, err := benchCallFile.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Place(out, tmp, UniqueName("bench"), data, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
