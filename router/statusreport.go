package router

import (
	"fmt"
	"time"

	"smsrouter/channels"
)

// Status reports. app_sms writes no SMS-STATUS-REPORT (SPEC §1: srr is read
// from a SUBMIT and never acted on, a DELIVER never carries one), so a sender
// who asked for a report (srr=1) gets a short text from the SMS Centre number
// instead: "Delivered to 1001 by SIP message, 14:03" or "Not delivered to
// 1001: The call was not answered." The report says what the PBX saw: for T the
// SIP MESSAGE was taken (Asterisk's MessageSend Success), for S, V and F the
// call was answered (the archived call file's Status: Completed), which
// RecordEvidence reads later. Generated messages (notices, replies, reports)
// never ask for one, so a report is never reported on.

// wantsReport says whether the job's sender asked for a status report that this
// router answers: srr set on a message from a person, reports on for the letter.
func (r *Router) wantsReport(j *job) bool {
	return j.msg != nil && j.msg.SRR && j.claim.depth == 0 && r.cfg.reportsOn(j.letter) &&
		r.cfg.SMSCNumber != "" && j.msg.OA != r.cfg.SMSCNumber
}

// reportOnHandoff settles the report of a job its channel delivered. A T
// delivery is final when MessageSend succeeds: the report goes with the batch.
// A call is only placed: the report waits for the call's outcome (RecordEvidence),
// and the journal remembers it was asked for.
func (r *Router) reportOnHandoff(j *job) {
	if !r.wantsReport(j) {
		return
	}
	if j.state != StateDelivered {
		if j.state.Final() {
			j.fact("report", "failed: the sender's notice")
		}
		return
	}
	if j.letter != 'T' {
		if awaits, _ := j.result.Detail[channels.AwaitsCall].(bool); !awaits {
			// No evidence will come (archive is off, or the text joined a call
			// placed for another message): saying "delivered" would be a guess.
			j.fact("report", "not sent: no call evidence (archive = true in the channel's section)")
			return
		}
		j.fact("report", "pending")
		return
	}
	art, id, err := reportArtefact(r.l.inbox, r.cfg.SMSCNumber, j.msg.OA, deliveredText(j.msg.DA, string(j.letter), r.now().In(r.cfg.Location)), r.now().In(r.cfg.Location))
	if err != nil {
		r.log.Error("status report could not be written", "id", j.claim.id, "err", err)
		return
	}
	j.notice = append(j.notice, art)
	j.fact("report", "delivered")
	j.fact("report_id", id)
}

func deliveredText(to, letter string, at time.Time) string {
	return fmt.Sprintf("Delivered to %s by %s, %s", to, describeWay(letter), at.Format("15:04"))
}

func failedText(to, reason string) string {
	return fmt.Sprintf("Not delivered to %s: %s", to, reason)
}

// reportArtefact is the report as a message from the SMS Centre, one generation
// deep like a notice.
func reportArtefact(inbox, smsc, to, text string, now time.Time) (channels.Artefact, string, error) {
	art, id, err := channels.NewMessage(inbox, smsc, to, text, 1, now)
	if err != nil {
		return art, "", err
	}
	art.Kind = "report"
	return art, id, nil
}
