package fastagi

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// hangupHandlerEnv is the environment block res_agi sends from the outcome
// context's hangup handler: the fixture's shape (agi/3-msgctx.raw) on the
// answered PJSIP channel, in extension result of the context, with the
// AGI() arguments the generated dialplan passes.
func hangupHandlerEnv(context, exten string, args ...string) string {
	var b strings.Builder
	b.WriteString("agi_network: yes\nagi_network_script: callresult\n")
	b.WriteString("agi_request: agi://127.0.0.1:4573/callresult\n")
	b.WriteString("agi_channel: PJSIP/1001-0000002c\nagi_language: en\nagi_type: PJSIP\n")
	b.WriteString("agi_uniqueid: 1795239737.95\nagi_version: 22.10.1\nagi_callerid: 9001\n")
	b.WriteString("agi_calleridname: Fax\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n")
	b.WriteString("agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: " + context + "\n")
	b.WriteString("agi_extension: " + exten + "\nagi_priority: 1\nagi_enhanced: 0.0\nagi_accountcode: \n")
	b.WriteString("agi_threadid: 140502018688705\n")
	for i, a := range args {
		b.WriteString("agi_arg_" + strconv.Itoa(i+1) + ": " + a + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// callresult through the real FastAGI server over TCP, for messages a real
// router delivered: what is recorded, what is refused, and that the server
// sends no command to the dead channel.
func TestAGICallResultRecords(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn)
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		id, err := rg.r.Submit("5550001", "5551001", "hello")
		if err != nil {
			t.Fatal(err)
		}
		rg.drain()
		results := t.TempDir()
		ar := newAGIRig(t, Config{Directory: rg.dir, Journal: rg.journal, Results: results})
		read := func() (router.CallResult, bool) {
			data, err := os.ReadFile(filepath.Join(results, id))
			if err != nil {
				return router.CallResult{}, false
			}
			r, err := router.ParseCallResult(data)
			if err != nil {
				t.Fatal(err)
			}
			return r, true
		}

		// The failed extension of the first, unanswered attempt.
		cmds := ar.call(t, &fakeChannel{env: hangupHandlerEnv("smsrouter-fax", "failed", id, "1", "2", "dial", "5")})
		if len(cmds) != 0 {
			t.Fatalf("commands sent to a dead channel: %q", cmds)
		}
		if r, ok := read(); !ok || r.What != router.ResultDial || r.Status != "5" || r.Attempt != 1 || r.Tries != 2 || r.Final() {
			t.Fatalf("%+v %v", r, ok)
		}
		// The second attempt was answered; FAXERROR arrives URI-encoded, or,
		// from a hand-written dialplan, raw and split at its comma.
		for _, errArgs := range [][]string{
			{"Received%20no%20response%20to%20DCS%2C%20training%20or%20TCF"},
			{"Received no response to DCS", " training or TCF"},
		} {
			args := append([]string{id, "2", "2", "fax", "FAILED", "0"}, errArgs...)
			ar.call(t, &fakeChannel{env: hangupHandlerEnv("smsrouter-fax", "result", args...)})
			r, ok := read()
			if !ok || r.What != router.ResultFax || r.Status != "FAILED" || r.Error != "Received no response to DCS, training or TCF" || !r.Final() {
				t.Fatalf("%+v %v", r, ok)
			}
		}
		// A late or repeated report of the first attempt does not undo it.
		ar.call(t, &fakeChannel{env: hangupHandlerEnv("smsrouter-fax", "failed", id, "1", "2", "dial", "5")})
		if r, _ := read(); r.What != router.ResultFax {
			t.Fatalf("overwritten by an earlier attempt: %+v", r)
		}

		// Garbage and unknown messages: logged, nothing written, the server lives on.
		for _, args := range [][]string{
			{},
			{"../../etc/passwd", "1", "2", "dial", "5"},
			{id, "x", "2", "dial", "5"},
			{id, "1", "2", "telegram", "5"},
			{id, "1", "2", "fax", "SUCCESS", "many"},
			{strings.Repeat("9", 5000)},
			{"1795239855000-00aabbccdd", "1", "2", "dial", "5"}, // a valid id no router gave
		} {
			ar.call(t, &fakeChannel{env: hangupHandlerEnv("smsrouter-sms", "failed", args...)})
		}
		entries, _ := os.ReadDir(results)
		if len(entries) != 1 || entries[0].Name() != id {
			t.Fatalf("results folder: %v", entries)
		}
		if n := len(ar.logs.matching("callresult refused")); n != 6 {
			t.Errorf("%d refusals logged: %q", n, ar.logs.matching("callresult"))
		}
		if n := len(ar.logs.matching("callresult for an unknown message")); n != 1 {
			t.Errorf("unknown id logged %d times", n)
		}
		// Still serving.
		ar.call(t, &fakeChannel{env: hangupHandlerEnv("smsrouter-voice", "result", id, "3", "2", "voice", "SUCCESS")})
		if r, _ := read(); r.What != router.ResultVoice || r.Attempt != 3 {
			t.Fatalf("%+v", r)
		}
	})
}

// Without a Results folder there is no callresult handler: the request is
// answered like any unknown script, and nothing is written.
func TestAGICallResultNeedsFolder(t *testing.T) {
	rg := newRig(t, testdb.SQLite(t))
	ar := newAGIRig(t, Config{Directory: rg.dir})
	if _, ok := ar.h.Handlers()["callresult"]; ok {
		t.Fatal("callresult without a folder")
	}
}

func TestParseCallResultArgs(t *testing.T) {
	now := time.Date(2026, 12, 2, 14, 3, 0, 0, time.UTC)
	id := "1795239855000-00aabbccdd"
	r, err := ParseCallResultArgs([]string{id, "1", "", "FAX", "success", "2", "HANGUP"}, now)
	if err != nil || r.Status != "SUCCESS" || r.Pages != 2 || r.Tries != 0 || r.Error != "HANGUP" || !r.At.Equal(now) {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = ParseCallResultArgs([]string{id, "1", "2", "fax", "FAILED", "0", "bad%ZZ\x01line"}, now)
	if err != nil || r.Error != "bad%ZZ line" {
		t.Fatalf("undecodable error kept as sent, one line: %+v %v", r, err)
	}
	if _, err := ParseCallResultArgs([]string{id, "0", "2", "dial", "5"}, now); err == nil {
		t.Fatal("attempt 0 accepted")
	}
}

func FuzzParseCallResultArgs(f *testing.F) {
	f.Add("1795239855000-00aabbccdd,1,2,fax,FAILED,0,Far%20end%20cannot%20receive")
	f.Add("1795239855000-00aabbccdd,2,2,dial,5")
	f.Add(",,,,")
	f.Add("1795239855000-00aabbccdd,1,2,fax,SUCCESS,2,%ff%fe,\x00")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseCallResultArgs(strings.Split(s, ","), time.Unix(0, 0))
		if err != nil {
			return
		}
		if err := r.Check(); err != nil {
			t.Fatalf("accepted %+v: %v", r, err)
		}
		if _, err := router.WriteCallResult(t.TempDir(), r, false); err != nil {
			t.Fatalf("accepted but not writable: %+v: %v", r, err)
		}
	})
}
