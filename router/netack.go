package router

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
)

// Acknowledgements a mobile network asks for. An SMSC may deliver a message
// whose sender asked for an acknowledgement (SMPP registered_delivery): the
// link's ingress writes the request beside the queued message
// (WriteAckRequest), the router keeps it in the message's journal detail
// ("network_ack"), and once the message's fate is final (the same points a
// status report for srr=1 is decided: the hand-off for T and C, the call's
// outcome for S, F and V, any failure) queues a status report to the sender
// through the link the message came by, carrying the request
// (channels.Message.Acknowledges), which the link sends as its protocol's
// acknowledgement. The report is a message like any other: a link that is
// down holds it in deferred/, and its markers send it once. The request is
// the link's own record, opaque here but for the link's name.
//
// Files, all named by message id: acks/<id> holds the requests of a received
// message (a JSON array: a joined text has one per part that asked), written
// before the message appears in the inbox and removed when it is final;
// acks-out/<id> holds the request a queued report answers, written before
// the report is queued and removed when the report is final.

// ackDir holds the requests of received messages; ackOutDir those of reports.
func ackDir(work string) string    { return filepath.Join(work, "acks") }
func ackOutDir(work string) string { return filepath.Join(work, "acks-out") }

// WriteAckRequest records that the message id (not queued yet) asks its
// network for an acknowledgement: req is the link's record of it, a JSON
// object naming the link ("link"). Write it before the message is queued
// (SubmitOnceWith's accepted): a crash in between leaves a stray file, never
// a message whose request is lost.
func WriteAckRequest(work, id string, req []byte, sync bool) error {
	if !channels.ValidID(id) {
		return fmt.Errorf("acknowledgement request: id %q", id)
	}
	if _, err := ackLink(req); err != nil {
		return err
	}
	return writeAckFile(ackDir(work), id, []json.RawMessage{req}, sync)
}

func writeAckFile(dir, id string, reqs []json.RawMessage, sync bool) error {
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return fmt.Errorf("acknowledgement request: %w", err)
	}
	b, err := json.Marshal(reqs)
	if err != nil {
		return fmt.Errorf("acknowledgement request: %w", err)
	}
	path := filepath.Join(dir, id)
	os.Remove(path) // a stray one from a crash: this is the message's now
	if err := writeNew(path, b, 0o640, sync); err != nil {
		return fmt.Errorf("acknowledgement request: %w", err)
	}
	return nil
}

// ackLink reads the link a request names.
func ackLink(req []byte) (string, error) {
	var head struct {
		Link string `json:"link"`
	}
	if err := json.Unmarshal(req, &head); err != nil || !channels.ValidLinkName(head.Link) {
		return "", fmt.Errorf("acknowledgement request names no link: %.80s", req)
	}
	return head.Link, nil
}

func readAckFile(dir, id string) []json.RawMessage {
	b, _, err := readCapped(filepath.Join(dir, id), 64<<10)
	if err != nil {
		return nil
	}
	var reqs []json.RawMessage
	if json.Unmarshal(b, &reqs) != nil {
		return nil
	}
	return reqs
}

// answersNetwork says whether a generated message is a report that answers a
// network's acknowledgement request: it goes out through its link, even to a
// number the directory knows.
func answersNetwork(work string, j *job) bool {
	if j.claim.depth == 0 {
		return false
	}
	_, err := os.Lstat(filepath.Join(ackOutDir(work), j.claim.id))
	return err == nil
}

// readAnswer is the request a queued report answers, nil for any other message.
func readAnswer(work, id string) []byte {
	reqs := readAckFile(ackOutDir(work), id)
	if len(reqs) != 1 {
		return nil
	}
	return reqs[0]
}

// NetworkAck is a message's "network_ack" detail.
type NetworkAck struct {
	Requests []json.RawMessage `json:"requests"`
	// State: "pending" (waits for the call's outcome), "queued" (the report is
	// queued: detail "report" and "report_id" say which), "carried on by <id>"
	// (a retry of the call answers), or "not sent: <why>".
	State string `json:"state"`
}

func networkAckOf(detail string) *NetworkAck {
	var d struct {
		NA *NetworkAck `json:"network_ack"`
	}
	if detail == "" || !strings.Contains(detail, `"network_ack"`) || json.Unmarshal([]byte(detail), &d) != nil {
		return nil
	}
	return d.NA
}

// ackOn says whether a message whose fate came by letter is acknowledged:
// the way letters by [reports] letters, the rest (C, a failure before any
// way) unless reports are off.
func (c *Config) ackOn(letter byte) bool {
	if c.Reports.Letters == "-" {
		return false
	}
	if letter != 0 && strings.IndexByte(WayLetters, letter) >= 0 {
		return c.reportsOn(letter)
	}
	return true
}

// answerNetwork settles the acknowledgements the batch's messages asked for,
// before the batch is journaled: the report is staged with the message's fate,
// or the journal says it waits for the call or why none is sent.
func (r *Router) answerNetwork(jobs []*job) {
	entries, err := os.ReadDir(ackDir(r.l.work))
	if err != nil || len(entries) == 0 {
		return
	}
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, j := range jobs {
		var reqs []json.RawMessage
		for _, id := range append([]string{j.claim.id}, j.parts...) {
			if have[id] {
				j.acked = append(j.acked, id)
				reqs = append(reqs, readAckFile(ackDir(r.l.work), id)...)
			}
		}
		if len(reqs) == 0 || j.wasFinal || j.msg == nil || j.state == "" || j.state == StateHeld || j.state == StateDeferred {
			continue
		}
		na := &NetworkAck{Requests: reqs}
		j.fact("network_ack", na)
		na.State = r.ackOnFate(j, reqs)
	}
}

// ackOnFate decides the acknowledgement of a job whose state is settled in this
// batch and returns the journal's word for it.
func (r *Router) ackOnFate(j *job, reqs []json.RawMessage) string {
	switch {
	case j.claim.depth > 0:
		return "not sent: a generated message"
	case !r.cfg.ackOn(j.letter) && j.letter != 0:
		return fmt.Sprintf("not sent: reports are off for letter %c ([reports] letters)", j.letter)
	case !r.cfg.ackOn(j.letter):
		return `not sent: reports are off ([reports] letters = "-")`
	case r.cfg.Inbound[r.cfg.Plan.Normalize(j.msg.OA)].Link != "":
		// The sender was no number (a name): it came from the link's own number.
		return "not sent: the sender is not a number"
	case r.cfg.SMSCNumber == "":
		return "not sent: no smsc_number to send reports from"
	case j.state == StateDuplicate:
		return "not sent: a copy of a message already answered"
	case j.state == StateRejected:
		return "not sent: the message was rejected"
	}
	now := r.now().In(r.cfg.Location)
	if j.state == StateDelivered {
		if strings.IndexByte(ringing, j.letter) >= 0 {
			if awaits, _ := j.result.Detail[channels.AwaitsCall].(bool); !awaits {
				return "not sent: no call evidence (archive = true in the channel's section)"
			}
			return "pending"
		}
		return r.queueAck(j, reqs, "delivered", deliveredText(j.msg.DA, string(j.letter), now), now)
	}
	if !j.state.Final() {
		return "not sent: state " + string(j.state)
	}
	why := j.told
	if why == "" {
		why = publicReason("", "")
	}
	return r.queueAck(j, reqs, "failed", failedText(j.msg.DA, why), now)
}

// queueAck stages one report per request, each to go out through its link
// carrying its request, and records them like an srr report.
func (r *Router) queueAck(j *job, reqs []json.RawMessage, outcome, text string, now time.Time) string {
	arts, ids, err := queueAckReports(r.l.work, r.l.inbox, r.cfg.SMSCNumber, j.msg.OA, text, j.claim.depth+1, reqs, r.cfg.Links, now, r.cfg.Sync)
	j.notice = append(j.notice, arts...)
	if err != nil {
		r.log.Error("acknowledgement not queued", "id", j.claim.id, "err", err)
		return "not sent: " + err.Error()
	}
	for k, v := range reportFacts(outcome, ids) {
		j.fact(k, v)
	}
	return "queued"
}

// queueAckReports builds one report per request (queueAckReport); on an
// error, the ones built before it are returned with it.
func queueAckReports(work, inbox, smsc, to, text string, depth int, reqs []json.RawMessage, links map[string]channels.Channel, now time.Time, sync bool) ([]channels.Artefact, []string, error) {
	var arts []channels.Artefact
	var ids []string
	for _, req := range reqs {
		art, id, err := queueAckReport(work, inbox, smsc, to, text, depth, req, links, now, sync)
		if err != nil {
			return arts, ids, err
		}
		arts = append(arts, art)
		ids = append(ids, id)
	}
	return arts, ids, nil
}

// reportFacts are the journal detail's words for queued reports, as for an
// srr report: the outcome and the report's id (all of them for a joined text).
func reportFacts(outcome string, ids []string) map[string]any {
	f := map[string]any{"report": outcome, "report_id": ids[0]}
	if len(ids) > 1 {
		f["report_ids"] = ids
	}
	return f
}

// queueAckReport builds the report as a message from the SMS Centre number
// and writes, before it can be queued, the files that send it through the
// request's link as the acknowledgement.
func queueAckReport(work, inbox, smsc, to, text string, depth int, req json.RawMessage, links map[string]channels.Channel, now time.Time, sync bool) (channels.Artefact, string, error) {
	link, err := ackLink(req)
	if err != nil {
		return channels.Artefact{}, "", err
	}
	if links != nil && links[link] == nil {
		return channels.Artefact{}, "", fmt.Errorf("the link %s it came by is not configured", link)
	}
	art, id, err := channels.NewMessage(inbox, smsc, to, text, depth, now)
	if err != nil {
		return art, "", err
	}
	art.Kind = "report"
	if err := writeAckFile(ackOutDir(work), id, []json.RawMessage{req}, sync); err != nil {
		return art, "", err
	}
	if err := os.MkdirAll(viaDir(work), 0o770); err != nil {
		return art, "", fmt.Errorf("acknowledgement: %w", err)
	}
	if err := writeNew(filepath.Join(viaDir(work), id), []byte(link+"\n"), 0o640, sync); err != nil {
		return art, "", fmt.Errorf("acknowledgement: %w", err)
	}
	return art, id, nil
}

// forgetAcks removes a final message's request files and, for a report, the
// request it answered.
func forgetAcks(work string, j *job) {
	for _, id := range j.acked {
		os.Remove(filepath.Join(ackDir(work), id))
	}
	if j.answers || j.claim.depth > 0 {
		// A report ends here even when it never reached its link (the loop
		// guard dropped it, it expired): its request and via go with it.
		os.Remove(filepath.Join(ackOutDir(work), j.claim.id))
		if j.via == "" {
			forgetVia(work, j.claim.id)
		}
	}
}

// answerNetworkOnCall settles the acknowledgement a delivered S, F or V
// message waits for, once its call's outcome is read (RecordEvidence): a
// report to queue after the journal write, or nothing. next is the message
// that carries a failed call on (afterCall), which answers instead.
func (a *Admin) answerNetworkOnCall(rec Record, o CallOutcome, next string, add map[string]any) ([]channels.Artefact, error) {
	na := networkAckOf(rec.Detail)
	if na == nil || na.State != "pending" {
		return nil, nil
	}
	now := a.now().In(a.cfg.Location)
	var outcome, text string
	switch {
	case next != "":
		na.State = "carried on by " + next
		add["network_ack"] = na
		return nil, nil
	case o.Failed():
		// Judged as the sender's notice is: a busy line, a fax that did not
		// go through, a playback that failed, no answer, or a call file
		// Asterisk could not use.
		outcome, text = "failed", failedText(rec.DA, publicCallReason(o))
	case o.Status == callfile.StatusCompleted:
		outcome, text = "delivered", deliveredCallText(rec.DA, rec.Letter, o, now)
	default:
		return nil, nil
	}
	depth, _ := detailMap(rec.Detail)["depth"].(float64)
	arts, ids, err := queueAckReports(a.l.work, a.l.inbox, a.cfg.SMSCNumber, rec.OA, text, int(depth)+1, na.Requests, a.cfg.Links, now, a.cfg.Sync)
	if err != nil {
		return nil, fmt.Errorf("acknowledgement of %s: %w", rec.ID, err)
	}
	na.State = "queued"
	add["network_ack"] = na
	maps.Copy(add, reportFacts(outcome, ids))
	return arts, nil
}

// carryNetworkAck hands a pending acknowledgement on to the message that
// retries a failed call (afterCall), before that message is queued.
func (a *Admin) carryNetworkAck(rec Record, retry string) error {
	na := networkAckOf(rec.Detail)
	if na == nil || na.State != "pending" || len(na.Requests) == 0 {
		return nil
	}
	if err := writeAckFile(ackDir(a.l.work), retry, na.Requests, a.cfg.Sync); err != nil {
		return fmt.Errorf("retry of %s: %w", rec.ID, err)
	}
	return nil
}
