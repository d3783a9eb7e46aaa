package callfile

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseFixtures reads every call file captured from smsq and from
// pbx_spool's outgoing_done, and fails if a fixture has no expectation.
func TestParseFixtures(t *testing.T) {
	type want struct {
		path, channel, callerID, app, data string
		retries                            [3]int // MaxRetries, RetryTime, WaitTime
		attempts                           []Attempt
		status                             string
	}
	tests := []want{
		{"mo-binary_8bit_dcs4/smsq.motx.5550010.1", "Local/9000@smsc", "SMS <5550010>", "SMS", "5550010", [3]int{10, 1, 10}, nil, ""},
		{"mo-concat_part1/smsq.motx.5550004.1", "Local/9000@smsc", "SMS <5550004>", "SMS", "5550004", [3]int{10, 1, 10}, nil, ""},
		{"mo-concat_part2/smsq.motx.5550004.1", "Local/9000@smsc", "SMS <5550004>", "SMS", "5550004", [3]int{10, 1, 10}, nil, ""},
		{"mo-control_chars_ucs1/smsq.motx.5550007.1", "Local/9000@smsc", "SMS <5550007>", "SMS", "5550007", [3]int{10, 1, 10}, nil, ""},
		{"mo-control_chars_ucs2/smsq.motx.5550008.1", "Local/9000@smsc", "SMS <5550008>", "SMS", "5550008", [3]int{10, 1, 10}, nil, ""},
		{"mo-emoji_surrogates/smsq.motx.5550003.1", "Local/9000@smsc", "SMS <5550003>", "SMS", "5550003", [3]int{10, 1, 10}, nil, ""},
		{"mo-gsm7_escapes/smsq.motx.5550011.1", "Local/9000@smsc", "SMS <5550011>", "SMS", "5550011", [3]int{10, 1, 10}, nil, ""},
		{"mo-pitfall_udh_incl_udhl_truncated/smsq.motx.5550004.1", "Local/9000@smsc", "SMS <5550004>", "SMS", "5550004", [3]int{10, 1, 10}, nil, ""},
		{"mo-plain_ascii/smsq.motx.5550001.1", "Local/9000@smsc", "SMS <5550001>", "SMS", "5550001", [3]int{10, 1, 10}, nil, ""},
		{"mo-polish_ucs2/smsq.motx.5550002.1", "Local/9000@smsc", "SMS <5550002>", "SMS", "5550002", [3]int{10, 1, 10}, nil, ""},
		{"mo-rp_vp_pid/smsq.motx.5550006.1", "Local/9000@smsc", "SMS <5550006>", "SMS", "5550006", [3]int{10, 1, 10}, nil, ""},
		{"mo-status_report_request/smsq.motx.5550005.1", "Local/9000@smsc", "SMS <5550005>", "SMS", "5550005", [3]int{10, 1, 10}, nil, ""},
		{"mt-all_fields/smsq.mttx.1000.1", "Local/1000@phones", "SMS <9001>", "SMS", "1000,s", [3]int{100, 30, 10}, nil, ""},
		{"mt-plain/smsq.mttx.0.1795239666-21722.1", "Local/1000@phones", "SMS <9001>", "SMS", "0,s", [3]int{100, 30, 10}, nil, ""},
		{"mt-scts_mr/smsq.mttx.0.1795239681-22695.1", "Local/1000@phones", "SMS <9001>", "SMS", "0,s", [3]int{100, 30, 10}, nil, ""},
		{"mt-ucs2/smsq.mttx.0.1795239670-21800.1", "Local/1000@phones", "SMS <9001>", "SMS", "0,s", [3]int{100, 30, 10}, nil, ""},
		{"mt-ucs2_emoji_surrogates/smsq.mttx.0.1795239673-21909.1", "Local/1000@phones", "SMS <9001>", "SMS", "0,s", [3]int{100, 30, 10}, nil, ""},
		{"mt-udh_nodial_then_dial/smsq.mttx.0.1795239677-21986.1", "Local/1000@phones", "SMS <9001>", "SMS", "0,s", [3]int{100, 30, 10}, nil, ""},
		{"spool-behaviour/expire-1795239855.call", "Local/nope@nocontext", "", "Wait", "1", [3]int{1, 2, 3}, []Attempt{{"StartRetry", 14546, 1, 1795239857}, {"EndRetry", 14546, 1, 1795239855}, {"StartRetry", 14546, 2, 1795239859}}, "Expired"},
		{"spool-behaviour/future-1795239855.call", "Local/s@agitest-peer", "", "Wait", "1", [3]int{0, 0, 0}, []Attempt{{"StartRetry", 14546, 1, 1795240175}}, "Completed"},
		{"spool-behaviour/invalid-1795239855.call", "Local/s@agitest-peer", "", "", "", [3]int{0, 0, 0}, nil, "Failed"},
		{"voice/archived-voice-missing_file-1795239849848335786.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/does_not_exist", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240149}}, "Completed"},
		{"voice/archived-voice-wav16k_named_wav-1795239839187066675.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello16k", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240139}}, "Completed"},
		{"voice/archived-voice-wav16k_named_wav16-1795239840214097038.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello16k_named", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240140}}, "Completed"},
		{"voice/archived-voice-wav22k-1795239846525769543.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello22k", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240146}}, "Completed"},
		{"voice/archived-voice-wav8k-1795239831201942069.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello8k", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240131}}, "Completed"},
		{"voice/archived-voice-wav8k_stereo-1795239847799713265.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello8k_stereo", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240147}}, "Completed"},
		{"voice/archived-voice-wav8k_ulaw_fmt-1795239848824530788.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello8k_ulaw_in_wav", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240148}}, "Completed"},
		{"voice/archived-voice-with_extension-1795239850871248687.call", "Local/rec@voice", "\"Voice test\" <5551234>", "Playback", "/var/spool/voice/hello8k.wav", [3]int{0, 0, 10}, []Attempt{{"StartRetry", 14546, 1, 1795240150}}, "Completed"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.path] = true
		t.Run(tt.path, func(t *testing.T) {
			r, err := Parse(readFixture(t, tt.path))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := want{tt.path, r.Channel, r.CallerID, r.Application, r.Data,
				[3]int{r.MaxRetries, r.RetryTime, r.WaitTime}, r.Attempts, r.Status}
			if got.channel != tt.channel || got.callerID != tt.callerID || got.app != tt.app ||
				got.data != tt.data || got.retries != tt.retries || got.status != tt.status ||
				!slices.Equal(got.attempts, tt.attempts) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt)
			}
			if len(r.Unknown) != 0 {
				t.Errorf("Unknown = %q", r.Unknown)
			}
			archived := strings.HasPrefix(tt.path, "spool-behaviour/") || strings.HasPrefix(tt.path, "voice/")
			if r.Archive != archived {
				t.Errorf("Archive = %v, want %v", r.Archive, archived)
			}
			if r.InProgress() {
				t.Errorf("InProgress = true for a file that is finished or never started")
			}
			if strings.HasPrefix(tt.path, "voice/") {
				name := strings.TrimPrefix(filepath.Base(tt.path), "archived-voice-")
				name = name[:strings.LastIndexByte(name, '-')]
				wantVars := []Var{{"__RECFILE", "/var/spool/voice/rec/" + name}}
				if !slices.Equal(r.Vars, wantVars) {
					t.Errorf("Vars = %q, want %q", r.Vars, wantVars)
				}
			}
		})
	}
	err := filepath.WalkDir(fixtureDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "README.md" {
			return err
		}
		rel, _ := filepath.Rel(fixtureDir, path)
		if !seen[filepath.ToSlash(rel)] {
			t.Errorf("fixture %s has no expectation", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk fixtures: %v", err)
	}
}

// A file as smsq wrote it, re-marshalled from its parsed form, must give
// the same bytes: proof that Marshal's order and spelling are smsq's.
func TestParseMarshalSmsqIdentity(t *testing.T) {
	for _, rel := range []string{"mt-plain/smsq.mttx.0.1795239666-21722.1", "mo-rp_vp_pid/smsq.motx.5550006.1"} {
		data := readFixture(t, rel)
		r, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: Parse: %v", rel, err)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", rel, err)
		}
		if string(b) != string(data) {
			t.Errorf("%s: re-marshalled =\n%s\nwant\n%s", rel, b, data)
		}
	}
}

func TestParseRules(t *testing.T) {
	base := "Channel: Local/1@x\nApplication: A\n"
	tests := []struct {
		name    string
		in      string
		check   func(r *Record) bool
		unknown int
	}{
		{"keys case-insensitive", "CHANNEL: Local/1@x\napplication: A\ndAtA: d\n", func(r *Record) bool { return r.Data == "d" && r.Channel == "Local/1@x" }, 0},
		{"leading blanks skipped, trailing trimmed", base + "Data: \t  d e \t\r\n", func(r *Record) bool { return r.Data == "d e" }, 0},
		{"no blank after colon", base + "Data:d\n", func(r *Record) bool { return r.Data == "d" }, 0},
		{"value with colon", base + "Data: a:b\n", func(r *Record) bool { return r.Data == "a:b" }, 0},
		{"semicolon comment", base + "Data: a;b\n", func(r *Record) bool { return r.Data == "a" }, 0},
		{"escaped semicolon", base + "Data: a\\;b\\;c\n", func(r *Record) bool { return r.Data == "a;b;c" }, 0},
		{"escaped backslash semicolon", base + "Data: a\\\\;b\n", func(r *Record) bool { return r.Data == "a\\;b" }, 0},
		{"hash after blank", base + "Data: a #b\n", func(r *Record) bool { return r.Data == "a" }, 0},
		{"hash after tab", base + "Data: a\t#b\n", func(r *Record) bool { return r.Data == "a" }, 0},
		{"hash inside word kept", base + "Data: a#b\n", func(r *Record) bool { return r.Data == "a#b" }, 0},
		{"hash not escapable", base + "Data: a \\#b\n", func(r *Record) bool { return r.Data == "a \\#b" }, 0},
		{"hash right after colon kept", base + "Data:#b\n", func(r *Record) bool { return r.Data == "#b" }, 0},
		{"hash cut before semicolon", base + "Data: a\\; #b;c\n", func(r *Record) bool { return r.Data == "a;" }, 0},
		{"comment lines and blanks", "# comment\n; comment\n\n   \n" + base, func(r *Record) bool { return r.Application == "A" }, 0},
		{"last value wins", base + "Data: 1\nData: 2\n", func(r *Record) bool { return r.Data == "2" }, 0},
		{"set and setvar accumulate", base + "Set: A=1\nSetVar: __B=x=y\nsetvar: C=\n", func(r *Record) bool {
			return slices.Equal(r.Vars, []Var{{"A", "1"}, {"__B", "x=y"}, {"C", ""}})
		}, 0},
		{"setvar value keeps leading blank", base + "Setvar: A= 1\n", func(r *Record) bool { return r.Vars[0].Value == " 1" }, 0},
		{"setvar without equals", base + "Setvar: A\n", func(r *Record) bool { return r.Vars == nil }, 1},
		{"codecs accumulate", base + "Codecs: ulaw\nCodecs: alaw\n", func(r *Record) bool { return r.Codecs == "ulaw,alaw" }, 0},
		{"numbers like sscanf", base + "WaitTime: 20s\nMaxRetries: -1\nRetryTime: +5\n", func(r *Record) bool {
			return r.WaitTime == 20 && r.MaxRetries == -1 && r.RetryTime == 5
		}, 0},
		{"bad waittime resets to default", base + "WaitTime: 20\nWaitTime: soon\n", func(r *Record) bool { return r.WaitTime == 0 }, 1},
		{"waittime below 1", base + "WaitTime: 0\n", func(r *Record) bool { return r.WaitTime == 0 }, 1},
		{"number overflow", base + "MaxRetries: 99999999999\n", func(r *Record) bool { return r.MaxRetries == 0 }, 1},
		{"priority normalised", "Channel: a/b\nExtension: s\nPriority: 007x\n", func(r *Record) bool { return r.Priority == "7" }, 0},
		{"priority zero", "Channel: a/b\nExtension: s\nPriority: 0\n", func(r *Record) bool { return r.Priority == "" }, 1},
		{"booleans like ast_true", base + "Archive: On\nAlwaysDelete: nope\nEarly_Media: 1\n", func(r *Record) bool {
			return r.Archive && r.AlwaysDelete != nil && !*r.AlwaysDelete && r.EarlyMedia
		}, 0},
		{"channel without slash ignored", base + "Channel: Local\n", func(r *Record) bool { return r.Channel == "Local/1@x" }, 1},
		{"unknown key", base + "Foo: bar\n", func(r *Record) bool { return r.Unknown[0] == "Foo: bar" }, 1},
		{"key with blank is unknown", base + "Data : x\n", func(r *Record) bool { return r.Data == "" }, 1},
		{"unicode fold is not ASCII case", base + "ſet: A=1\n", func(r *Record) bool { return r.Vars == nil }, 1},
		{"no final newline", base + "Data: x", func(r *Record) bool { return r.Data == "x" }, 0},
		{"crlf", "Channel: Local/1@x\r\nApplication: A\r\n", func(r *Record) bool { return r.Application == "A" }, 0},
		{"line of MaxLine bytes read", base + "Data: " + strings.Repeat("d", MaxLine-6) + "\n", func(r *Record) bool { return len(r.Data) == MaxLine-6 }, 0},
		{"longer line skipped", base + "Data: " + strings.Repeat("d", MaxLine-5) + "\n", func(r *Record) bool { return r.Data == "" }, 1},
		{"longer last line skipped", base + "Data: " + strings.Repeat("d", MaxLine-5), func(r *Record) bool { return r.Data == "" }, 1},
		{"status", base + "Status: Expired\n", func(r *Record) bool { return r.Status == StatusExpired }, 0},
		{"bookkeeping", base + "\nStartRetry: 1 1 (100)\n\nendretry: 1 1 (90)\nDelayedRetry: 2 1 (95)\nAbortRetry: x\nRetry: 3\n", func(r *Record) bool {
			return slices.Equal(r.Attempts, []Attempt{{KindStartRetry, 1, 1, 100}, {KindEndRetry, 1, 1, 90}, {KindDelayedRetry, 2, 1, 95}, {KindAbortRetry, 0, 0, 0}, {KindRetry, 3, 0, 0}}) &&
				r.Retries() == 3
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(r) {
				t.Errorf("unexpected record %+v", *r)
			}
			if len(r.Unknown) != tt.unknown {
				t.Errorf("Unknown = %q, want %d lines", r.Unknown, tt.unknown)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"NUL", "Channel: Local/1@x\x00\nApplication: A\n"},
		{"binary", "\x89PNG\r\n\x1a\n\x00\x00"},
		{"escape char", "Channel: Local/1@x\x1b[31m\n"},
		{"line without colon", "Channel: Local/1@x\nhello world\n"},
		{"colon only inside comment", "Channel: Local/1@x\nfoo ;bar: x\n"},
		{"too large", "Channel: Local/1@x\n" + strings.Repeat("; padding padding\n", MaxSize/16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := Parse([]byte(tt.in)); err == nil {
				t.Errorf("Parse accepted it: %+v", *r)
			}
		})
	}
}

func TestInProgress(t *testing.T) {
	const head = "Channel: Local/1@x\nApplication: A\nArchive: yes\n"
	tests := []struct {
		name string
		tail string
		want bool
	}{
		{"never started", "", false},
		{"started", "\nStartRetry: 7 1 (100)\n", true},
		{"ended", "\nStartRetry: 7 1 (100)\n\nEndRetry: 7 1 (99)\n", false},
		{"second attempt running", "\nStartRetry: 7 1 (100)\n\nEndRetry: 7 1 (99)\n\nStartRetry: 7 2 (102)\n", true},
		{"delayed retry keeps it running", "\nStartRetry: 7 1 (100)\n\nDelayedRetry: 7 1 (101)\n", true},
		{"aborted after restart", "\nStartRetry: 7 1 (100)\n\nAbortRetry: 8 1 (200)\n", false},
		{"aborted then restarted", "\nStartRetry: 7 1 (100)\n\nAbortRetry: 8 2 (200)\n\nStartRetry: 8 2 (230)\n", true},
		{"completed", "\nStartRetry: 7 1 (100)\nStatus: Completed\n", false},
		{"expired after start line", "\nStartRetry: 7 2 (100)\nStatus: Expired\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(head + tt.tail))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.InProgress(); got != tt.want {
				t.Errorf("InProgress = %v, want %v (attempts %+v)", got, tt.want, r.Attempts)
			}
		})
	}
}
