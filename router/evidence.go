package router

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
)

// CallOutcome is what Asterisk appended to one of our call files it archived in
// outgoing_done (Archive: yes): whether the call was answered.
//
// Completed means the callee answered, not that the message or fax got through;
// Expired means every attempt went unanswered; Failed means Asterisk could not use
// the file. The journal keeps this as evidence beside the message's fate rather
// than as a new State: "delivered" stays "handed to its channel", and an admin
// reads the call's outcome from the evidence.
type CallOutcome struct {
	File     string    `json:"file"`
	ID       string    `json:"-"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Last     time.Time `json:"last,omitzero"` // the last attempt Asterisk logged, when any

	// What the outcome context reported (callresult.go), and what it means:
	// Cause is the retry rule's cause of a failed call, Reason says why in
	// words. FromResult marks an outcome known from the result alone, before
	// or without an archive; Note says when the result never came.
	Result     *CallResult `json:"result,omitempty"`
	Cause      string      `json:"cause,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	FromResult bool        `json:"from_result,omitempty"`
	Note       string      `json:"note,omitempty"`

	expects      bool      // the call went through an outcome context: a result is to come
	awaitsResult bool      // and it has not come yet, but may
	archived     time.Time // when Asterisk archived it
}

// Failed reports whether the call did not get the message through: nobody
// answered, Asterisk refused the file, or the answered call's fax or
// playback failed.
func (o CallOutcome) Failed() bool {
	return o.Status == callfile.StatusExpired || o.Status == callfile.StatusFailed || o.Cause != ""
}

// cause is the retry rule's cause of a failed call.
func (o CallOutcome) cause() string {
	if o.Cause != "" {
		return o.Cause
	}
	return callCause(o.Status)
}

// ReadOutgoingDone parses the archived call files in dir that carry our channels.CallVar.
// Files that are not ours, not finished or unreadable are skipped: outgoing_done
// belongs to Asterisk and may hold anything.
func ReadOutgoingDone(dir string) ([]CallOutcome, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []CallOutcome
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, mtime, err := readCapped(filepath.Join(dir, e.Name()), callfile.MaxSize)
		if err != nil {
			continue
		}
		o, ok := ParseCallOutcome(e.Name(), data)
		if ok {
			o.archived = mtime
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// ParseCallOutcome reads one archived call file. ok is false when it is not one
// of ours (no valid channels.CallVar) or Asterisk has not written its Status yet.
func ParseCallOutcome(name string, data []byte) (CallOutcome, bool) {
	rec, err := callfile.Parse(data)
	if err != nil || rec.Status == "" {
		return CallOutcome{}, false
	}
	id, expects := "", false
	for _, v := range rec.Vars {
		switch v.Name {
		case channels.CallVar:
			id = v.Value
		case channels.TriesVar:
			expects = rec.Extension != ""
		}
	}
	if !validID(id) {
		return CallOutcome{}, false
	}
	o := CallOutcome{File: name, ID: id, Status: rec.Status, expects: expects}
	for _, a := range rec.Attempts {
		if a.Kind == callfile.KindStartRetry {
			o.Attempts++
		}
	}
	if n := len(rec.Attempts); n > 0 && rec.Attempts[n-1].Epoch > 0 {
		o.Last = time.Unix(rec.Attempts[n-1].Epoch, 0)
	}
	return o, true
}

// EvidenceSummary counts what RecordEvidence did.
type EvidenceSummary struct {
	Recorded int      // new outcomes written to the journal
	Known    int      // already recorded earlier
	Orphans  int      // no journal row for the id (another router's, or a wiped journal)
	Notices  []string // ids of notices queued to senders
	Reports  []string // ids of status reports queued to senders
	Retried  []string // ids of the messages that retry a failed call, on its way or the next
	Waiting  int      // archived calls waiting for their call result (CallResultWait)
}

// RecordEvidence reads outgoing_done and records each new call outcome in its
// message's journal row (detail "calls", and last_error when the call was not
// answered). With notify, the sender of a message whose call Expired or Failed
// gets the "expired"/"failed" notice. Recording is idempotent: an outcome already
// in the row is skipped, so running it every minute is cheap and safe.
func (a *Admin) RecordEvidence(ctx context.Context, notify bool) (EvidenceSummary, error) {
	var sum EvidenceSummary
	outs, err := a.callOutcomes()
	if err != nil {
		return sum, err
	}
	for _, o := range outs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		rec, err := a.journal.Get(ctx, o.ID)
		if errors.Is(err, sql.ErrNoRows) {
			sum.Orphans++
			a.resultDone(o) // a result for no message of ours: nothing will use it
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("evidence %s: %w", o.File, err)
		}
		if sameCallRecorded(detailCallList(rec.Detail), o) {
			sum.Known++
			a.resultDone(o) // recorded before a crash kept the file from going
			continue
		}
		if o.awaitsResult {
			sum.Waiting++
			continue
		}
		list := append(detailCallList(rec.Detail), o)
		add := map[string]any{"calls": list}
		next, err := a.afterCall(ctx, rec, o, add)
		if err != nil {
			return sum, fmt.Errorf("evidence %s: %w", o.File, err)
		}
		var notice *struct {
			name, reason string
		}
		switch {
		case next != "" && o.Reason != "":
			sum.Retried = append(sum.Retried, next)
			rec.LastError = fmt.Sprintf("%s (%d attempts); carried on by %s", o.Reason, o.Attempts, next)
		case next != "":
			sum.Retried = append(sum.Retried, next)
			rec.LastError = fmt.Sprintf("the call ended %s (%d attempts); carried on by %s", o.Status, o.Attempts, next)
		case o.Status == callfile.StatusExpired && o.Cause != "":
			// Busy or congestion: "expired" would not say why.
			rec.LastError = fmt.Sprintf("%s (%d attempts)", o.Reason, o.Attempts)
			notice = &struct{ name, reason string }{"failed", publicCallReason(o)}
		case o.Status == callfile.StatusExpired:
			rec.LastError = fmt.Sprintf("the call was not answered (%d attempts)", o.Attempts)
			// The notice's .Reason is for the sender, not the journal's wording.
			notice = &struct{ name, reason string }{"expired", "The call was not answered."}
		case o.Status == callfile.StatusFailed:
			rec.LastError = "Asterisk could not place the call (call file failed)"
			notice = &struct{ name, reason string }{"failed", "The call could not be placed."}
		case o.Failed():
			rec.LastError = o.Reason
			notice = &struct{ name, reason string }{"failed", publicCallReason(o)}
		}
		var queued []channels.Artefact
		if notice != nil && rec.OA != "" && rec.OA != a.cfg.SMSCNumber && a.cfg.SMSCNumber != "" {
			var art channels.Artefact
			var nid string
			switch {
			case notify:
				art, nid, err = a.noticeArtefact(notice.name, rec.OA, rec.DA, notice.reason, a.now())
				add["evidence_notice_id"] = nid
				if pendingReport(rec) {
					add["report"] = "failed: the sender's notice"
				}
			case pendingReport(rec):
				// No notices, but the sender asked for a report.
				art, nid, err = reportArtefact(a.l.inbox, a.cfg.SMSCNumber, rec.OA, failedText(rec.DA, notice.reason), a.now().In(a.cfg.Location))
				add["report"], add["report_id"] = "failed", nid
			}
			if err != nil {
				return sum, fmt.Errorf("evidence %s: %w", o.File, err)
			}
			if nid != "" {
				queued = append(queued, art)
			}
		}
		if o.Status == callfile.StatusCompleted && !o.Failed() && pendingReport(rec) && a.cfg.SMSCNumber != "" {
			art, nid, err := reportArtefact(a.l.inbox, a.cfg.SMSCNumber, rec.OA, deliveredCallText(rec.DA, rec.Letter, o, a.now().In(a.cfg.Location)), a.now().In(a.cfg.Location))
			if err != nil {
				return sum, fmt.Errorf("evidence %s: %w", o.File, err)
			}
			add["report"], add["report_id"] = "delivered", nid
			queued = append(queued, art)
		}
		arts, err := a.answerNetworkOnCall(rec, o, next, add)
		if err != nil {
			return sum, fmt.Errorf("evidence %s: %w", o.File, err)
		}
		queued = append(queued, arts...)
		rec.Detail = mergeDetail(rec.Detail, add)
		rec.Updated = a.now()
		// Journal first: a crash after it loses at most a notice, never sends two.
		if err := a.journal.Put(ctx, "", []Record{rec}); err != nil {
			return sum, fmt.Errorf("evidence %s: %w", o.File, err)
		}
		for _, art := range queued {
			if err := placeArtefact(art); err != nil {
				return sum, fmt.Errorf("evidence %s: %s: %w", o.File, art.Kind, err)
			}
			id, _, _ := channels.ParseSpoolName(art.Name)
			if art.Kind == "report" {
				sum.Reports = append(sum.Reports, id)
			} else {
				sum.Notices = append(sum.Notices, id)
			}
		}
		a.resultDone(o)
		sum.Recorded++
	}
	return sum, nil
}

// CallsOf returns the call outcomes recorded in a journal row's detail.
func CallsOf(rec Record) []CallOutcome { return detailCallList(rec.Detail) }

func detailCallList(detail string) []CallOutcome {
	var d struct {
		Calls []CallOutcome `json:"calls"`
	}
	if detail == "" || json.Unmarshal([]byte(detail), &d) != nil {
		return nil
	}
	return d.Calls
}

// mergeDetail sets keys in a JSON object detail, keeping the others. A detail
// that is not a JSON object is kept under "previous" rather than lost.
func mergeDetail(detail string, add map[string]any) string {
	d := map[string]any{}
	if detail != "" {
		if err := json.Unmarshal([]byte(detail), &d); err != nil {
			d = map[string]any{"previous": detail}
		}
	}
	for k, v := range add {
		d[k] = v
	}
	b, err := json.Marshal(d)
	if err != nil {
		return detail
	}
	return string(b)
}

// CallFate reads what a delivered message's call came to, for the reports that
// wait for it (router/dlr): pending while the call it placed is to be archived
// (channels.AwaitsCall) and Asterisk has not written its Status yet, or while a
// failed call is being retried (another message carries it on, see
// smsrouter_retry); failed when the call ended Expired or Failed for good. A
// message whose call is not archived, and every other state, is neither: its
// handoff is all there is to know.
func CallFate(rec Record) (pending, failed bool) {
	d := detailMap(rec.Detail)
	if rec.State != StateDelivered || d[channels.AwaitsCall] != true {
		return false, false
	}
	calls := CallsOf(rec)
	if len(calls) == 0 {
		return true, false
	}
	if !calls[len(calls)-1].Failed() {
		return false, false
	}
	if id, _ := d["retry_id"].(string); id != "" {
		return true, false
	}
	return false, true
}
