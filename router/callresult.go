package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
)

// Call results. A call file that starts in one of the generated outcome
// contexts (channels.Dialling.Context) reports what the PBX saw to FastAGI
// callresult: the fax's FAXSTATUS, FAXPAGES and FAXERROR, Playback's
// PLAYBACKSTATUS, or, for a call nobody answered, Asterisk's dial result
// (REASON: busy, congestion, no answer). The ingress writes each report
// into callresults/<id> in the work folder, one atomic file per message;
// RecordEvidence reads it together with the archived call file.
//
// A file rather than a table: the report arrives from a hangup handler that
// holds an Asterisk channel while it waits, so it must not wait on a
// database that stalls; the evidence reader works on files already (the
// archives in outgoing_done), and it removes the file only once the journal
// holds what it said, so a crash in between repeats the reading, never loses it.

// What a call result reports on (CallResult.What).
const (
	ResultDial  = "dial"  // the call was not answered; Status is REASON
	ResultFax   = "fax"   // SendFax ended; Status is FAXSTATUS
	ResultVoice = "voice" // Playback ended; Status is PLAYBACKSTATUS
	ResultSMS   = "sms"   // SMS() ended; app_sms sets no status
)

// DefaultCallResultWait is how long an archived call that went through an
// outcome context waits for its result before it is judged by the archive
// alone (Config.CallResultWait). The hangup handler runs before pbx_spool
// archives the call, so a result that is late by more than this is lost.
const DefaultCallResultWait = 2 * time.Minute

// callResultKeep is how long a result no call file completes is kept (the
// last attempt's report was lost and Archive is off).
const callResultKeep = 7 * 24 * time.Hour

// maxCallResultBytes bounds a result file: ours are about 200 bytes.
const maxCallResultBytes = 4 << 10

// CallResult is one report from an outcome context.
type CallResult struct {
	ID      string    `json:"id"`
	What    string    `json:"what"`
	Attempt int       `json:"attempt"`         // AST_OUTGOING_ATTEMPT: 1 for the first
	Tries   int       `json:"tries,omitempty"` // attempts in all (channels.TriesVar); 0 unknown
	Status  string    `json:"status,omitempty"`
	Pages   int       `json:"pages,omitempty"` // FAXPAGES
	Error   string    `json:"error,omitempty"` // FAXERROR
	At      time.Time `json:"at"`
}

// Check refuses a result that cannot have come from our contexts.
func (r CallResult) Check() error {
	if !validID(r.ID) {
		return fmt.Errorf("call result: %q is not a message id", r.ID)
	}
	switch r.What {
	case ResultDial, ResultFax, ResultVoice, ResultSMS:
	default:
		return fmt.Errorf("call result %s: %q is not one of dial, fax, voice, sms", r.ID, r.What)
	}
	if r.Attempt < 1 || r.Tries < 0 || r.Pages < 0 || r.Attempt > 1e6 || r.Tries > 1e6 || r.Pages > 1e6 {
		return fmt.Errorf("call result %s: attempt, tries or pages out of range", r.ID)
	}
	if len(r.Status) > 32 || len(r.Error) > 256 || strings.ContainsAny(r.Status+r.Error, "\x00\r\n") {
		return fmt.Errorf("call result %s: status or error too long or not one line", r.ID)
	}
	return nil
}

// Final reports whether nothing more will come of the call: the answered
// call's application ended, or the last attempt went unanswered.
func (r CallResult) Final() bool {
	return r.What != ResultDial || (r.Tries > 0 && r.Attempt >= r.Tries)
}

// Asterisk's dial results (REASON on the failed extension; pbx.c
// pbx_dial_reason): the old originate reasons, AST_CONTROL_* numbers.
const (
	reasonFailure    = "0" // no route, unavailable, unallocated
	reasonHangup     = "1"
	reasonNoAnswer   = "3" // AST_CONTROL_RINGING: it rang, nobody answered
	reasonBusy       = "5"
	reasonCongestion = "8"
)

// judge says whether the call failed by this result, why (for the journal
// and the sender), and the retry rule's cause. ok is false when the result
// says nothing the archive does not (an SMS call that ended, a playback
// without a status).
func (r CallResult) judge() (failed bool, cause, why string, ok bool) {
	switch r.What {
	case ResultDial:
		switch r.Status {
		case reasonBusy:
			return true, channels.CauseBusy, "the line was busy", true
		case reasonCongestion:
			return true, channels.CauseCongestion, "the network could not connect the call (congestion)", true
		case reasonNoAnswer:
			return true, channels.CauseNoAnswer, "nobody answered", true
		case reasonHangup:
			return true, channels.CauseNoAnswer, "the call was hung up while dialling", true
		}
		// 0 and anything newer: not busy, not congestion, not answered.
		return true, channels.CauseNoAnswer, fmt.Sprintf("the call could not be connected (Asterisk reason %s)", r.Status), true
	case ResultFax:
		if r.Status == "SUCCESS" {
			return false, "", "", true
		}
		why := "the fax was not transmitted"
		if r.Error != "" {
			why += ": " + r.Error
		}
		if faxTraining(r.Error) {
			return true, channels.CauseFaxTraining, why, true
		}
		return true, channels.CauseFailed, why, true
	case ResultVoice:
		switch r.Status {
		case "SUCCESS":
			return false, "", "", true
		case "FAILED":
			return true, channels.CauseFailed, "the recording could not be played", true
		}
	}
	return false, "", "", false
}

// faxTraining reports whether a FAXERROR (spandsp's t30_completion_code_to_str)
// says the machines never agreed how to send a page: no tone or no answer to
// the first messages, a failed training, a failed DIS/DCS exchange, or a far
// end that cannot take the page as offered; res_fax_spandsp counts these as
// failed_to_train and neg_failed. Another attempt later, perhaps at a lower
// rate or to a machine that has been fixed, may get through, which the
// fax_training rule is for. A file that cannot be read, a session that could
// not start or a line that dropped mid-page are plain failures.
func faxTraining(e string) bool {
	l := strings.ToLower(e)
	for _, s := range []string{"train", "ced tone", "timed out waiting for initial communication",
		"timed out waiting for the first message", "hdlc carrier", "negotiat", "far end cannot",
		"far end is not", "not compatible", "operator intervention"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return strings.Contains(e, "DIS") || strings.Contains(e, "DCS")
}

// CallResultsDir is the folder of call results below the work folder.
func CallResultsDir(work string) string { return filepath.Join(work, "callresults") }

// ParseCallResult reads a result file's content.
func ParseCallResult(data []byte) (CallResult, error) {
	var r CallResult
	if len(data) > maxCallResultBytes {
		return r, fmt.Errorf("call result: %d bytes", len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return CallResult{}, fmt.Errorf("call result: %w", err)
	}
	if err := r.Check(); err != nil {
		return CallResult{}, err
	}
	return r, nil
}

var resultMu sync.Mutex // one writer per process at a time: the later attempt must win

// WriteCallResult records r in dir atomically, unless the file there already
// holds a later attempt's result (a late or repeated request). It reports
// whether r was written.
func WriteCallResult(dir string, r CallResult, sync bool) (bool, error) {
	if err := r.Check(); err != nil {
		return false, err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	resultMu.Lock()
	defer resultMu.Unlock()
	path := filepath.Join(dir, r.ID)
	if old, err := os.ReadFile(path); err == nil {
		if o, err := ParseCallResult(old); err == nil && laterResult(o, r) {
			return false, nil
		}
	}
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return false, fmt.Errorf("call result %s: %w", r.ID, err)
	}
	tmp := filepath.Join(dir, ".tmp-"+r.ID+"-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := writeNew(tmp, append(data, '\n'), 0o640, sync); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("call result %s: %w", r.ID, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("call result %s: %w", r.ID, err)
	}
	if sync {
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return true, nil
}

// laterResult says whether the stored o supersedes the new r: a later
// attempt, or the same attempt's final word against a dial result.
func laterResult(o, r CallResult) bool {
	if o.Attempt != r.Attempt {
		return o.Attempt > r.Attempt
	}
	return o.What != ResultDial && r.What == ResultDial
}

// storedResult is a result file as the evidence reader found it.
type storedResult struct {
	CallResult
	path     string
	modified time.Time
}

// readCallResults reads every result file in dir by message id. Files that
// do not parse are left for removeStaleResults: a writer never leaves one
// half-written (rename), so they are not ours.
func readCallResults(dir string) (map[string]storedResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	out := map[string]storedResult{}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, _, err := readCapped(path, maxCallResultBytes)
		if err != nil {
			continue
		}
		r, err := ParseCallResult(data)
		if err != nil || r.ID != e.Name() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out[r.ID] = storedResult{CallResult: r, path: path, modified: info.ModTime()}
	}
	return out, nil
}

// removeStaleResults removes what no call file will ever complete: results
// and unreadable files older than callResultKeep, and temporary files a
// crash left behind.
func removeStaleResults(dir string, now time.Time) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		age := now.Sub(info.ModTime())
		if age > callResultKeep || (strings.HasPrefix(e.Name(), ".tmp-") && age > time.Hour) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// callResultLabel names an outcome known from its call result alone, in the
// place of an archived file's name (which never holds a '/').
const callResultLabel = "callresult/"

// callOutcomes reads the archived calls in outgoing_done and the call results
// and pairs them by message id. An archive of a call that went through an
// outcome context waits up to CallResultWait for its result (awaitsResult
// marks those, unless the journal has the call already), then is judged alone with a note saying so. A final result whose
// call has no archive (Archive off, or not yet written) is an outcome of its
// own.
func (a *Admin) callOutcomes() (out []CallOutcome, err error) {
	archives, err := ReadOutgoingDone(filepath.Join(a.cfg.Spool, "outgoing_done"))
	if err != nil {
		return nil, err
	}
	dir := CallResultsDir(a.l.work)
	results, err := readCallResults(dir)
	if err != nil {
		return nil, err
	}
	now := a.now()
	removeStaleResults(dir, now)
	archived := map[string]bool{}
	for _, o := range archives {
		archived[o.ID] = true
		r, ok := results[o.ID]
		switch {
		case ok && resultOf(o, r.CallResult):
			o = withResult(o, r.CallResult)
		case o.expects && o.Status != callfile.StatusFailed:
			if now.Sub(o.archived) < a.cfg.CallResultWait {
				o.awaitsResult = true
				break
			}
			o.Note = fmt.Sprintf("no call result from the dialplan within %s (FastAGI down?); judged by the call file alone", a.cfg.CallResultWait)
		}
		out = append(out, o)
	}
	ids := make([]string, 0, len(results))
	for id, r := range results {
		if !archived[id] && r.Final() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := results[id].CallResult
		o := CallOutcome{File: callResultLabel + id, ID: id, Status: callfile.StatusCompleted, Attempts: r.Attempt, Last: r.At, FromResult: true}
		if r.What == ResultDial {
			o.Status = callfile.StatusExpired
		}
		out = append(out, withResult(o, r))
	}
	return out, nil
}

// resultOf says whether r reports on the call o archives: an answered call's
// application result, or the dial result of its last attempt. A dial result
// of an earlier attempt says nothing about how the call ended.
func resultOf(o CallOutcome, r CallResult) bool {
	switch o.Status {
	case callfile.StatusCompleted:
		return r.What != ResultDial
	case callfile.StatusExpired:
		return r.What == ResultDial && (o.Attempts == 0 || r.Attempt == o.Attempts)
	}
	return false
}

func withResult(o CallOutcome, r CallResult) CallOutcome {
	o.Result = &r
	if failed, cause, why, ok := r.judge(); ok && failed {
		o.Cause, o.Reason = cause, why
	}
	return o
}

// resultDone removes the call result o was judged with, once the journal
// holds it (or there is no message to hold it).
func (a *Admin) resultDone(o CallOutcome) {
	if o.Result != nil {
		os.Remove(filepath.Join(CallResultsDir(a.l.work), o.ID))
	}
}

// sameCallRecorded says whether the call o tells of is in the journal row's
// calls already: the same archive, or, a message having one call, its
// outcome known from the result before the archive came (or after).
func sameCallRecorded(calls []CallOutcome, o CallOutcome) bool {
	for _, c := range calls {
		if c.File == o.File || c.FromResult || o.FromResult {
			return true
		}
	}
	return false
}

// publicCallReason is the sentence the sender's notice gives for a failed call.
func publicCallReason(o CallOutcome) string {
	switch {
	case o.Cause == channels.CauseBusy:
		return "The line was busy."
	case o.Cause == channels.CauseCongestion:
		return "The call could not be connected."
	case o.Result != nil && o.Result.What == ResultFax && o.Cause != "":
		return "The fax could not be transmitted."
	case o.Result != nil && o.Result.What == ResultVoice && o.Cause != "":
		return "The message could not be played."
	case o.Status == callfile.StatusFailed && o.Cause == "":
		return "The call could not be placed."
	}
	return "The call was not answered."
}

// deliveredCallText is the status report of an answered call: with the
// pages a fax machine took, when the fax reported them.
func deliveredCallText(to, letter string, o CallOutcome, at time.Time) string {
	if r := o.Result; r != nil && r.What == ResultFax && r.Pages > 0 {
		pages := "pages"
		if r.Pages == 1 {
			pages = "page"
		}
		return fmt.Sprintf("Delivered to %s by fax, %d %s, %s", to, r.Pages, pages, at.Format("15:04"))
	}
	return deliveredText(to, letter, at)
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Seen says in words what the outcome context reported of the call, for
// journal show and the API: "fax SUCCESS, 2 page(s)", "busy: the line was
// busy", or the note that no report came; "" when there is nothing to say.
func (o CallOutcome) Seen() string {
	var parts []string
	if r := o.Result; r != nil && r.What != ResultDial {
		s := r.What + " " + orText(r.Status, "-")
		if r.What == ResultFax {
			s += fmt.Sprintf(", %d page(s)", r.Pages)
			if r.Error != "" {
				s += ", " + r.Error
			}
		}
		parts = append(parts, s)
	}
	if o.Cause != "" {
		parts = append(parts, o.Cause+": "+o.Reason)
	}
	if o.Note != "" {
		parts = append(parts, o.Note)
	}
	return strings.Join(parts, "; ")
}
