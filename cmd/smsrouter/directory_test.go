package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// TestAdoptedDirectory runs the binary against a PBXNumbers an old installation
// made by hand (no primary key, NULLs, odd values): `number set` updates or
// inserts, refuses what cannot work, `lookup` names a broken row, and a drain
// delivers the good messages while each one to a broken row bounces with a plain
// notice and a journal line naming the row (issue 12 item 5).
func TestAdoptedDirectory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		pre, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		ddl := `CREATE TABLE PBXNumbers (Account TEXT, Message TEXT, Extension TEXT)`
		if pre.Dialect == "mysql" {
			ddl = `CREATE TABLE PBXNumbers (Account VARCHAR(32), Message VARCHAR(8), Extension VARCHAR(255))`
		}
		rows := []struct {
			acc      string
			msg, ext any
		}{
			{"5550001", "S", "PJSIP/5550001"},
			{"5551001", "s", "PJSIP/1001"},
			{"5551003", nil, "PJSIP/1003"},
			{"5551006", "S", "PJSIP/10\x0106"},
			{"5551010", "S", "PJSIP/1010"},
			{"5551010", "S", "PJSIP/1010"},
		}
		if _, err := pre.DB.Exec(ddl); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if _, err := pre.DB.Exec(`INSERT INTO PBXNumbers VALUES (?, ?, ?)`, r.acc, r.msg, r.ext); err != nil {
				t.Fatal(err)
			}
		}
		pre.Close()
		b := newBed(t, dsn, "")
		count := func(n string) int {
			var c int
			if err := b.store.DB.QueryRow(`SELECT COUNT(*) FROM PBXNumbers WHERE Account = ?`, n).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}

		for _, c := range []struct {
			args     []string
			code     int
			out, err string // substrings
		}{
			{[]string{"set", "5551020", "s", "PJSIP/1020"}, 0, "", ""},
			{[]string{"set", "5551020", "S", "PJSIP/1020"}, 0, "", ""},
			{[]string{"set", "5551010", "S", "PJSIP/1010b"}, 0, "updated all 2 rows", ""},
			{[]string{"set", "5551021", "S", "PJSIP/1\x01"}, 2, "", "control character 0x01"},
			{[]string{"set", "5551021", "T", "SIP/1021"}, 2, "", "not a PJSIP endpoint"},
			{[]string{"set", "5551021", "F", "1021"}, 2, "", "not a dialable channel Tech/dest"},
			{[]string{"set", "5551021", "Q", "PJSIP/1021"}, 2, "", "not a service letter"},
		} {
			out, errOut, code := b.run(ctx, append([]string{"number", "--config", b.conf}, c.args...)...)
			if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.err) {
				t.Errorf("number %q: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", c.args, code, out, errOut, c.code, c.out, c.err)
			}
		}
		for n, want := range map[string]int{"5551020": 1, "5551010": 2, "5551021": 0} {
			if got := count(n); got != want {
				t.Errorf("%s: %d rows, want %d", n, got, want)
			}
		}

		out, _, code := b.run(ctx, "lookup", "--config", b.conf, "5551003", "5551010")
		if code != exitPartial || !strings.Contains(out, "5551003\tunusable\tPBXNumbers row Account='5551003': Message is NULL") ||
			!strings.Contains(out, "5551010\tS\tPJSIP/1010b") {
			t.Errorf("lookup: exit %d\n%s", code, out)
		}

		for _, da := range []string{"5551001", "5551003", "5551006", "5551010"} {
			// As app_sms writes: a dot name, then a rename.
			tmp := filepath.Join(b.morx, ".5550001.m"+da)
			writeFile(t, tmp, []byte("oa=5550001\nda="+da+"\nud=to "+da+"\n"))
			if err := os.Rename(tmp, filepath.Join(b.morx, "5550001.m"+da)); err != nil {
				t.Fatal(err)
			}
		}
		log, code := b.drain(ctx)
		if code != 0 {
			t.Fatalf("drain: exit %d\n%s", code, log)
		}
		for _, want := range []string{"PBXNumbers row Account='5551003': Message is NULL", "PBXNumbers row Account='5551006'"} {
			if !strings.Contains(log, want) {
				t.Errorf("drain's log does not name %q:\n%s", want, log)
			}
		}
		texts, queues := b.delivered()
		got := map[string][]string{}
		for id, text := range texts {
			got[queues[id]] = append(got[queues[id]], text)
		}
		for _, da := range []string{"5551001", "5551010"} {
			if len(got[da]) != 1 || got[da][0] != "to "+da {
				t.Errorf("%s got %q", da, got[da])
			}
		}
		notices := strings.Join(got["5550001"], "\n")
		for _, da := range []string{"5551003", "5551006"} {
			if !strings.Contains(notices, "Cannot deliver SMS to "+da+". The number is not set up to receive messages.") {
				t.Errorf("no notice about %s; the sender got:\n%s", da, notices)
			}
		}
		if len(got["5550001"]) != 2 || strings.Contains(notices, "PBXNumbers") || strings.Contains(notices, "\x01") {
			t.Errorf("notices to the sender:\n%s", notices)
		}
		var lastErr string
		if err := b.store.DB.QueryRow(`SELECT last_error FROM smsrouter_journal WHERE da = '5551006' AND state = 'bounced'`).Scan(&lastErr); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(lastErr, `PBXNumbers row Account='5551006': Extension "PJSIP/10\x0106" cannot be written into a call file: control character 0x01`) {
			t.Errorf("journal last_error %q", lastErr)
		}
	})
}

// TestNumberVoiceAsksTheEngine: a language or voice the configured engine lacks
// is refused when it is set, not found when a message is deferred for a day.
func TestNumberVoiceAsksTheEngine(t *testing.T) {
	for _, c := range []struct {
		engine, bin string
		args        []string
		code        int
		stderr      string
	}{
		{"espeak-ng", "espeak-ng", []string{"5551001", "xx-bogus"}, exitUsage, "espeak-ng --voices"},
		{"espeak-ng", "espeak-ng", []string{"5551001", "pl"}, exitOK, ""},
		{"espeak-ng", "espeak-ng", []string{"5551001", "en", "en+f3"}, exitOK, ""},
		{"espeak-ng", "espeak-ng", []string{"5551001", "en", "nosuchvoice"}, exitUsage, "cannot speak"},
		{"espeak-ng", "espeak-ng", []string{"--no-check", "5551001", "xx-bogus"}, exitOK, ""},
		{"flite", "flite", []string{"5551001", "en", "bogus"}, exitUsage, "flite -lv"},
		{"flite", "flite", []string{"5551001", "en", "slt"}, exitOK, ""},
		{"flite", "flite", []string{"5551001", "xx-bogus"}, exitOK, ""}, // flite ignores the language: only the phrases change
		{"festival", "festival", []string{"5551001", "en", "bogus"}, exitUsage, "voice.list"},
		{"festival", "festival", []string{"5551001", "en", "kal_diphone"}, exitOK, ""},
	} {
		if _, err := exec.LookPath(c.bin); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", c.bin, err)
		}
		b := newBed(t, "", "[voice]\nengine = \""+c.engine+"\"\n",
			router.Entry{Number: "5551001", Letter: 'V', Extension: "PJSIP/1001"})
		args := []string{"number", "--config", b.conf}
		rest := c.args
		if rest[0] == "--no-check" {
			args, rest = append(args, rest[0]), rest[1:]
		}
		args = append(append(args, "voice"), rest...)
		_, errOut, code := b.run(context.Background(), args...)
		if code != c.code || !strings.Contains(errOut, c.stderr) {
			t.Errorf("%s %q: exit %d, stderr %q; want exit %d saying %q", c.engine, c.args, code, errOut, c.code, c.stderr)
		}
		lang, _, err := b.store.VoiceOptions(context.Background(), "5551001")
		if err != nil {
			t.Fatal(err)
		}
		if stored := lang != ""; stored != (c.code == exitOK) {
			t.Errorf("%s %q: stored language %q after exit %d", c.engine, c.args, lang, code)
		}
	}
}
