package router

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	"smsrouter/channels/fax"
	"smsrouter/channels/sms"
)

// outcomeRig is a rig whose S and F calls start in the outcome contexts
// ([dialplan] outcome) and are archived; each call file allows two attempts
// (MaxRetries 1), as the captured Expired archive had.
func outcomeRig(t *testing.T, dsn string, mutate func(*Config)) *rig {
	t.Helper()
	store, err := OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rg := &rig{t: t, spool: t.TempDir(), store: store, journal: NewJournal(store), clock: &fakeClock{t: time.Now()}}
	rg.dir = NewSQLDirectory(store)
	cfg := Config{Spool: rg.spool, SMSCNumber: "9001", Location: time.UTC, RetryMin: time.Second, RetryMax: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := sms.New(sms.Config{Spool: rg.spool, SMSCNumber: "9001", Location: time.UTC, MaxRetries: 1, Archive: true,
		OutcomeContext: "smsrouter-sms"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fax.New(fax.Config{Spool: rg.spool, SMSCNumber: "9001", MaxRetries: 1, Archive: true, OutcomeContext: "smsrouter-fax"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, rg.directory(), rg.journal, map[byte]channels.Channel{'S': s, 'F': f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = rg.clock.now
	t.Cleanup(func() { r.Close() })
	rg.r = r
	return rg
}

// Tails Asterisk appended to captured archives: one answered attempt, and
// two unanswered ones.
const (
	completedFixture = "call/voice/archived-voice-wav8k-1795239831201942069.call"
	expiredFixture   = "call/spool-behaviour/expire-1795239855.call"
)

// callResult records r as FastAGI callresult would.
func (rg *rig) callResult(r CallResult) {
	rg.t.Helper()
	if r.At.IsZero() {
		r.At = rg.clock.now()
	}
	if _, err := WriteCallResult(CallResultsDir(filepath.Join(rg.spool, "smsrouter")), r, false); err != nil {
		rg.t.Fatal(err)
	}
}

// placedCall parses the one call file waiting in outgoing/.
func (rg *rig) placedCall() (string, *callfile.Record) {
	rg.t.Helper()
	calls := rg.files("outgoing")
	if len(calls) != 1 {
		rg.t.Fatalf("call files: %v", calls)
	}
	data, err := os.ReadFile(filepath.Join(rg.spool, "outgoing", calls[0]))
	if err != nil {
		rg.t.Fatal(err)
	}
	rec, err := callfile.Parse(data)
	if err != nil {
		rg.t.Fatal(err)
	}
	return calls[0], rec
}

func varOf(rec *callfile.Record, name string) string {
	for _, v := range rec.Vars {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// faxResultLine reads one line of the captured SendFax results
// (fax/fax_results_raw.txt, SPEC §6) as callresult would receive it.
func faxResultLine(t *testing.T, tag string) CallResult {
	t.Helper()
	for _, line := range strings.Split(string(fixture(t, "fax/fax_results_raw.txt")), "\n") {
		if !strings.Contains(line, " "+tag+" role=send ") {
			continue
		}
		field := func(k string) string {
			i := strings.Index(line, " "+k+"=")
			rest := line[i+len(k)+2:]
			if j := strings.Index(rest, " FAX"); j >= 0 && k != "FAXRESOLUTION" {
				return rest[:j]
			}
			return strings.Fields(rest)[0]
		}
		pages, _ := strconv.Atoi(field("FAXPAGES"))
		return CallResult{What: ResultFax, Status: field("FAXSTATUS"), Error: field("FAXERROR"), Pages: pages}
	}
	t.Fatalf("no send line for %s", tag)
	return CallResult{}
}

// An unanswered S call through the outcome context: the failed extension's
// REASON picks the retry rule, each with its own delay, where the archive
// alone could only say "not answered".
func TestDialResultPicksTheRetryRule(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		for _, c := range []struct {
			reason, cause, why string
			delay              time.Duration
		}{
			{"5", channels.CauseBusy, "the line was busy", 3 * time.Minute},
			{"8", channels.CauseCongestion, "congestion", 5 * time.Minute},
			{"3", channels.CauseNoAnswer, "nobody answered", 15 * time.Minute},
		} {
			t.Run(c.cause, func(t *testing.T) {
				rg := outcomeRig(t, dsn, func(cfg *Config) {
					cfg.Retry = RetryRules{
						channels.CauseBusy:       {Delay: 3 * time.Minute, Attempts: 1},
						channels.CauseCongestion: {Delay: 5 * time.Minute, Attempts: 1},
						channels.CauseNoAnswer:   {Delay: 15 * time.Minute, Attempts: 1},
					}
				})
				rg.set("5550001", 'S', "PJSIP/5550001")
				rg.set("5551001", 'S', "PJSIP/1001")
				ctx := context.Background()
				id, _ := rg.r.Submit("5550001", "5551001", "are you there")
				rg.drain()
				// The call file starts in the context, carrying what it needs.
				_, cf := rg.placedCall()
				if cf.Context != "smsrouter-sms" || cf.Extension != "s" || cf.Priority != "1" || cf.Application != "" ||
					varOf(cf, channels.CallVar) != id || varOf(cf, channels.TriesVar) != "2" ||
					!strings.HasSuffix(varOf(cf, channels.DataVar), ",s") {
					t.Fatalf("call file %+v", cf)
				}
				// Both attempts failed alike; the failed extension reported each.
				rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 1, Tries: 2, Status: c.reason})
				rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 2, Tries: 2, Status: c.reason})
				archive(t, rg, tailOf(t, expiredFixture))
				sum, err := rg.admin().RecordEvidence(ctx, true)
				if err != nil || sum.Recorded != 1 || len(sum.Retried) != 1 || len(sum.Notices) != 0 {
					t.Fatalf("%+v %v", sum, err)
				}
				if due := rg.r.NextDue(); !due.Equal(rg.clock.now().Add(c.delay).Truncate(time.Millisecond)) {
					t.Fatalf("next due %v, want %v after %v", due, c.delay, rg.clock.now())
				}
				rec := rg.record(id)
				calls := CallsOf(rec)
				if len(calls) != 1 || calls[0].Cause != c.cause || calls[0].Result == nil || calls[0].Result.Status != c.reason ||
					!strings.Contains(rec.LastError, c.why) || !strings.Contains(rec.Detail, `"cause":"`+c.cause+`"`) {
					t.Fatalf("journal: %s / %s", rec.LastError, rec.Detail)
				}
				if left := rg.files("smsrouter/callresults"); len(left) != 0 {
					t.Fatalf("results left: %v", left)
				}
				// Its rule's attempts used up, the next such failure tells the sender why.
				rg.clock.advance(c.delay)
				rg.drain()
				retry := sum.Retried[0]
				rg.callResult(CallResult{ID: retry, What: ResultDial, Attempt: 2, Tries: 2, Status: c.reason})
				archive(t, rg, tailOf(t, expiredFixture))
				sum, err = rg.admin().RecordEvidence(ctx, true)
				if err != nil || len(sum.Retried) != 0 || len(sum.Notices) != 1 {
					t.Fatalf("second: %+v %v", sum, err)
				}
				rg.drain()
				if got := rg.delivered()["5550001"]; len(got) != 1 || !strings.Contains(got[0], publicCallReason(CallOutcome{Cause: c.cause})) {
					t.Fatalf("notice %q", got)
				}
			})
		}
	})
}

// A final result is evidence on its own (Archive off, or the archive not yet
// written); the archive that follows is the same call, not a second one.
func TestCallResultWithoutArchive(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := outcomeRig(t, dsn, func(cfg *Config) {
			cfg.Retry = RetryRules{channels.CauseBusy: {Delay: 3 * time.Minute, Attempts: 1}}
		})
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		id, _ := rg.r.Submit("5550001", "5551001", "busy?")
		rg.drain()
		// Not the last attempt: nothing is decided yet.
		rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 1, Tries: 2, Status: "5"})
		if sum, err := rg.admin().RecordEvidence(ctx, true); err != nil || sum.Recorded != 0 {
			t.Fatalf("first attempt: %+v %v", sum, err)
		}
		rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 2, Tries: 2, Status: "5"})
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Recorded != 1 || len(sum.Retried) != 1 {
			t.Fatalf("%+v %v", sum, err)
		}
		calls := CallsOf(rg.record(id))
		if len(calls) != 1 || !calls[0].FromResult || calls[0].Status != callfile.StatusExpired || calls[0].Cause != channels.CauseBusy || calls[0].Attempts != 2 {
			t.Fatalf("%+v", calls)
		}
		// The archive comes after all: known, no second retry.
		archive(t, rg, tailOf(t, expiredFixture))
		sum, err = rg.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Known != 1 || sum.Recorded != 0 || len(sum.Retried) != 0 || len(rg.files("smsrouter/deferred")) != 1 {
			t.Fatalf("after the archive: %+v %v %v", sum, err, rg.files("smsrouter/deferred"))
		}
	})
}

// An archive whose call went through the outcome context waits for its
// result; when none comes (FastAGI was down while the handler ran), it is
// judged as before, and the journal says why.
func TestArchiveWithoutResultFallsBack(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := outcomeRig(t, dsn, func(cfg *Config) {
			cfg.Retry = RetryRules{channels.CauseNoAnswer: {Delay: 15 * time.Minute, Attempts: 1}}
			cfg.CallResultWait = time.Minute
		})
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		id, _ := rg.r.Submit("5550001", "5551001", "anyone?")
		rg.drain()
		archive(t, rg, tailOf(t, expiredFixture))
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Waiting != 1 || sum.Recorded != 0 {
			t.Fatalf("waiting: %+v %v", sum, err)
		}
		if pending, _ := CallFate(rg.record(id)); !pending {
			t.Fatal("the call's fate should be pending while its result may come")
		}
		rg.clock.advance(61 * time.Second)
		sum, err = rg.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Recorded != 1 || len(sum.Retried) != 1 {
			t.Fatalf("after the wait: %+v %v", sum, err)
		}
		calls := CallsOf(rg.record(id))
		if len(calls) != 1 || calls[0].Result != nil || !strings.Contains(calls[0].Note, "no call result") {
			t.Fatalf("%+v", calls)
		}
		if due := rg.r.NextDue(); !due.Equal(rg.clock.now().Add(15 * time.Minute).Truncate(time.Millisecond)) {
			t.Fatalf("judged by the archive alone, the no_answer rule applies: due %v", due)
		}
		// A result that comes after the judgement changes nothing and goes.
		rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 2, Tries: 2, Status: "5"})
		sum, err = rg.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Known != 1 || len(sum.Retried) != 0 || len(rg.files("smsrouter/callresults")) != 0 {
			t.Fatalf("late result: %+v %v %v", sum, err, rg.files("smsrouter/callresults"))
		}
	})
}

// A fax whose transmission failed although the call was answered (the
// archive says Completed): by FAXERROR a training/negotiation failure, so
// the fax_training rule retries it, then the recipient's next way (S) takes
// over; the journal shows each step.
func TestFailedFaxRetriedThenNextWay(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := outcomeRig(t, dsn, func(cfg *Config) {
			cfg.Retry = RetryRules{channels.CauseFaxTraining: {Delay: 30 * time.Minute, Attempts: 1}}
		})
		ctx := context.Background()
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'F', "PJSIP/1001")
		if err := rg.store.SetWays(ctx, "5551001", []NumberWay{{Letter: 'S'}}); err != nil {
			t.Fatal(err)
		}
		id, _ := rg.r.Submit("5550001", "5551001", "please fax this")
		rg.drain()
		_, cf := rg.placedCall()
		if cf.Context != "smsrouter-fax" || !strings.HasSuffix(varOf(cf, channels.DataVar), fax.TIFFName(id)) {
			t.Fatalf("fax call file %+v", cf)
		}
		// Captured: the far end refused the page size (SPEC §6).
		failed := faxResultLine(t, "g3_1d_204x196_2048-ecmyes")
		if failed.Status != "FAILED" || failed.Error != "Far end cannot receive at the size of image" {
			t.Fatalf("fixture read as %+v", failed)
		}
		failed.ID, failed.Attempt, failed.Tries = id, 1, 2
		rg.callResult(failed)
		archive(t, rg, tailOf(t, completedFixture))
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum.Retried) != 1 || len(sum.Notices) != 0 {
			t.Fatalf("%+v %v", sum, err)
		}
		if due := rg.r.NextDue(); !due.Equal(rg.clock.now().Add(30 * time.Minute).Truncate(time.Millisecond)) {
			t.Fatalf("fax_training delay not honoured: %v", due)
		}
		rec := rg.record(id)
		if calls := CallsOf(rec); len(calls) != 1 || calls[0].Cause != channels.CauseFaxTraining ||
			!strings.Contains(rec.LastError, "Far end cannot receive at the size of image") {
			t.Fatalf("journal %s / %s", rec.LastError, rec.Detail)
		}
		if pending, failedFate := CallFate(rec); !pending || failedFate {
			t.Fatalf("fate while retried: pending %v failed %v", pending, failedFate)
		}
		// The retry on the same way fails the same way: the next way, at once.
		rg.clock.advance(30 * time.Minute)
		s := rg.drain()
		if len(s.Outcomes) != 1 || s.Outcomes[0].Letter != "F" {
			t.Fatalf("retry %+v", s.Outcomes)
		}
		retry := s.Outcomes[0].ID
		failed.ID = retry
		rg.callResult(failed)
		archive(t, rg, tailOf(t, completedFixture))
		sum, err = rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum.Retried) != 1 {
			t.Fatalf("second: %+v %v", sum, err)
		}
		if d := detailMap(rg.record(retry).Detail)["retry"].(map[string]any); d["cause"] != channels.CauseFaxTraining || d["way"] != float64(1) {
			t.Fatalf("retry detail %v", d)
		}
		s = rg.drain()
		if len(s.Outcomes) != 1 || s.Outcomes[0].Letter != "S" || s.Outcomes[0].State != StateDelivered {
			t.Fatalf("next way %+v", s.Outcomes)
		}
		if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != "please fax this" {
			t.Fatalf("S delivery %q (%v)", got, rg.delivered())
		}
	})
}

// A fax that went through, for a sender who asked for a status report: the
// report says how many pages the machine took.
func TestFaxReportSaysPages(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := outcomeRig(t, dsn, nil)
		ctx := context.Background()
		rg.set("5550005", 'S', "PJSIP/5005")
		rg.set("5551001", 'F', "PJSIP/1001")
		rg.morx("5550005.2026-11-21T05:40:34-7", "oa=5550005\nda=5551001\nscts="+rg.clock.now().UTC().Format("2006-01-02T15:04:05")+"\nsrr=1\nud=two pages please\n")
		s := rg.drain()
		if len(s.Outcomes) != 1 || s.Outcomes[0].Letter != "F" {
			t.Fatalf("%+v", s.Outcomes)
		}
		id := s.Outcomes[0].ID
		if !pendingReport(rg.record(id)) {
			t.Fatalf("report not pending: %s", rg.record(id).Detail)
		}
		ok := faxResultLine(t, "g3_1d_204x196_1728_3pages-ecmyes") // SUCCESS, FAXERROR=HANGUP
		ok.ID, ok.Attempt, ok.Tries, ok.Pages = id, 1, 2, 2
		rg.callResult(ok)
		archive(t, rg, tailOf(t, completedFixture))
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum.Reports) != 1 || len(sum.Retried) != 0 {
			t.Fatalf("%+v %v", sum, err)
		}
		if pending, failed := CallFate(rg.record(id)); pending || failed {
			t.Fatalf("fate pending %v failed %v", pending, failed)
		}
		rg.drain()
		want := "Delivered to 5551001 by fax, 2 pages, " + rg.clock.now().UTC().Format("15:04")
		if got := rg.delivered()["5550005"]; len(got) != 1 || got[0] != want {
			t.Fatalf("report %q, want %q", got, want)
		}
	})
}

// A fax that failed for good (an unreadable file: the failed rule has no
// retries, and there is no other way) is a failed delivery: the sender who
// asked for a report is told, and the HTTP delivery report's fate is failed.
func TestFailedFaxReportedNotDelivered(t *testing.T) {
	rg := outcomeRig(t, testdbSQLite(t), nil)
	ctx := context.Background()
	rg.set("5550005", 'S', "PJSIP/5005")
	rg.set("5551001", 'F', "PJSIP/1001")
	rg.morx("5550005.2026-11-21T05:40:34-7", "oa=5550005\nda=5551001\nscts="+rg.clock.now().UTC().Format("2006-01-02T15:04:05")+"\nsrr=1\nud=doomed\n")
	id := rg.drain().Outcomes[0].ID
	bad := faxResultLine(t, "gray8_204x196_1728-ecmyes") // TIFF/F file cannot be opened
	bad.ID, bad.Attempt, bad.Tries = id, 1, 2
	rg.callResult(bad)
	archive(t, rg, tailOf(t, completedFixture))
	sum, err := rg.admin().RecordEvidence(ctx, false)
	if err != nil || len(sum.Reports) != 1 || len(sum.Retried) != 0 {
		t.Fatalf("%+v %v", sum, err)
	}
	rec := rg.record(id)
	if calls := CallsOf(rec); calls[0].Cause != channels.CauseFailed {
		t.Fatalf("%+v", calls)
	}
	if pending, failed := CallFate(rec); pending || !failed {
		t.Fatalf("fate pending %v failed %v", pending, failed)
	}
	rg.drain()
	if got := rg.delivered()["5550005"]; len(got) != 1 || got[0] != "Not delivered to 5551001: The fax could not be transmitted." {
		t.Fatalf("report %q", got)
	}
}

func TestFaxTrainingByError(t *testing.T) {
	for e, want := range map[string]bool{
		"Failed to train with any of the compatible modems": true,
		"Timed out waiting for initial communication":       true,
		"Received bad response to DCS or training":          true,
		"Unexpected DCN while waiting for DCS or DIS":       true,
		"Far end cannot receive at the size of image":       true,
		"TIFF/F file cannot be opened":                      false,
		"FILE_ERROR":                                        false,
		"INIT_ERROR":                                        false,
		"HANGUP":                                            false,
		"":                                                  false,
	} {
		if got := faxTraining(e); got != want {
			t.Errorf("%q: %v", e, got)
		}
	}
}

// A later attempt's result is not replaced by an earlier one that arrives late.
func TestWriteCallResultKeepsTheLaterAttempt(t *testing.T) {
	dir := t.TempDir()
	id := "1795239855000-00aabbccdd"
	w := func(r CallResult) bool {
		r.ID, r.At = id, time.Now()
		ok, err := WriteCallResult(dir, r, true)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !w(CallResult{What: ResultDial, Attempt: 2, Status: "5"}) || w(CallResult{What: ResultDial, Attempt: 1, Status: "3"}) {
		t.Fatal("order")
	}
	if !w(CallResult{What: ResultFax, Attempt: 2, Status: "SUCCESS"}) || w(CallResult{What: ResultDial, Attempt: 2, Status: "5"}) {
		t.Fatal("the answered call's result is final for its attempt")
	}
	got, _ := readCallResults(dir)
	if got[id].What != ResultFax {
		t.Fatalf("%+v", got)
	}
	if _, err := WriteCallResult(dir, CallResult{ID: "../x", What: ResultFax, Attempt: 1}, false); err == nil {
		t.Fatal("a hostile id was written")
	}
}

func FuzzParseCallResult(f *testing.F) {
	f.Add([]byte(`{"id":"1795239855000-00aabbccdd","what":"fax","attempt":1,"tries":2,"status":"FAILED","error":"x","at":"2026-12-02T10:00:00Z"}`))
	f.Add([]byte(`{"id":"../../etc","what":"dial","attempt":0}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseCallResult(data)
		if err != nil {
			return
		}
		if r.Check() != nil || !validID(r.ID) {
			t.Fatalf("accepted %+v", r)
		}
		r.judge()
	})
}

// What each report means, as the evidence reader takes it.
func TestCallResultJudge(t *testing.T) {
	for _, c := range []struct {
		r      CallResult
		failed bool
		cause  string
		public string
	}{
		{CallResult{What: ResultDial, Status: "5"}, true, channels.CauseBusy, "The line was busy."},
		{CallResult{What: ResultDial, Status: "8"}, true, channels.CauseCongestion, "The call could not be connected."},
		{CallResult{What: ResultDial, Status: "3"}, true, channels.CauseNoAnswer, "The call was not answered."},
		{CallResult{What: ResultDial, Status: "0"}, true, channels.CauseNoAnswer, "The call was not answered."},
		{CallResult{What: ResultFax, Status: "SUCCESS", Error: "HANGUP", Pages: 3}, false, "", ""},
		{CallResult{What: ResultFax, Status: "FAILED", Error: "TIFF/F file cannot be opened"}, true, channels.CauseFailed, "The fax could not be transmitted."},
		{CallResult{What: ResultFax, Status: "", Error: ""}, true, channels.CauseFailed, "The fax could not be transmitted."},
		{CallResult{What: ResultVoice, Status: "FAILED"}, true, channels.CauseFailed, "The message could not be played."},
		{CallResult{What: ResultVoice, Status: "SUCCESS"}, false, "", ""},
		{CallResult{What: ResultVoice, Status: ""}, false, "", ""},
		{CallResult{What: ResultSMS, Status: "ENDED"}, false, "", ""},
	} {
		status := callfile.StatusCompleted
		if c.r.What == ResultDial {
			status = callfile.StatusExpired
		}
		o := withResult(CallOutcome{Status: status}, c.r)
		if o.Failed() != c.failed || o.Cause != c.cause || (c.failed && publicCallReason(o) != c.public) {
			t.Errorf("%+v: failed %v cause %q public %q", c.r, o.Failed(), o.Cause, publicCallReason(o))
		}
	}
}
